package chirpstack

// GatewayMessage hands the gateway backend one MQTT message as the broker
// would (fuzz targets call it directly, so an input that breaks the decoder
// is the one reported).
func (s *Server) GatewayMessage(topic string, payload []byte) {
	s.onGatewayMessage(nil, message{topic: topic, payload: payload})
}

// message is a received MQTT message (paho.Message).
type message struct {
	topic   string
	payload []byte
}

func (m message) Duplicate() bool   { return false }
func (m message) Qos() byte         { return 0 }
func (m message) Retained() bool    { return false }
func (m message) Topic() string     { return m.topic }
func (m message) MessageID() uint16 { return 0 }
func (m message) Payload() []byte   { return m.payload }
func (m message) Ack()              {}
