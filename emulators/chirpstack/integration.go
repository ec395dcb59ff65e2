package chirpstack

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/brocaar/lorawan"
	"github.com/chirpstack/chirpstack/api/go/v4/integration"
	paho "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tap2join/tap2join/fixtures/transport/mqttconn"
)

// MQTT application integration (chirpstack/src/integration/mqtt.rs) with the
// default event topic application/{application_id}/device/{dev_eui}/event/{event},
// JSON (json = true) or Protobuf (json = false: Config.ProtobufEvents).

// pendingEvent is an integration event built under the server lock and
// published after it is released.
type pendingEvent struct {
	appID  string
	devEUI lorawan.EUI64
	typ    string // up, join, ack, txack, log, status
	msg    proto.Message
}

// marshalEvent renders an integration message the way ChirpStack's pbjson
// build does (api/rust/build.rs): lowerCamelCase names, enums by name, bytes
// base64, and — because integration messages are built with emit_fields —
// scalar fields present even at their zero value (fCnt: 0, adr: false), while
// unset sub-messages are left out and nested gw.* messages (rxInfo, txInfo)
// omit defaults.
func marshalEvent(m proto.Message) ([]byte, error) {
	full, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(full, &obj); err != nil {
		return nil, err
	}
	for k, v := range obj {
		if string(v) == "null" {
			delete(obj, k)
		}
	}
	// The nested messages omit their defaults: render those fields alone,
	// sparse (one message each, not the whole event a second time: this
	// runs for every event a fleet's network sends).
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	for _, k := range sparseEventFields {
		fd := fields.ByJSONName(k)
		if fd == nil || !r.Has(fd) {
			delete(obj, k)
			continue
		}
		v, err := marshalSparse(fd, r.Get(fd))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		obj[k] = v
	}
	return json.Marshal(obj)
}

// sparseEventFields are the fields of integration events rendered without
// their defaults (see marshalEvent).
var sparseEventFields = []string{"rxInfo", "txInfo", "relayRxInfo", "object", "joinServerContext"}

// marshalSparse renders one message-typed field (or a list of messages) as
// protojson does without EmitUnpopulated.
func marshalSparse(fd protoreflect.FieldDescriptor, v protoreflect.Value) (json.RawMessage, error) {
	if fd.Message() == nil {
		return nil, fmt.Errorf("not a message field")
	}
	if !fd.IsList() {
		return protojson.Marshal(v.Message().Interface())
	}
	l := v.List()
	out := []byte{'['}
	for i := range l.Len() {
		b, err := protojson.Marshal(l.Get(i).Message().Interface())
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, b...)
	}
	return append(out, ']'), nil
}

// encodeEvent renders an event as the integration's json setting says
// (Config.ProtobufEvents).
func (s *Server) encodeEvent(m proto.Message) ([]byte, error) {
	if s.cfg.ProtobufEvents {
		return proto.Marshal(m)
	}
	return marshalEvent(m)
}

func (s *Server) publishEvents(evs []pendingEvent) {
	for _, e := range evs {
		b, err := s.encodeEvent(e.msg)
		if err != nil {
			s.logf("chirpstack: encode %s event: %v", e.typ, err)
			continue
		}
		topic := fmt.Sprintf("application/%s/device/%s/event/%s", e.appID, e.devEUI, e.typ)
		s.publishAsync(topic, b)
	}
}

// publishAsync hands a QoS 0 message to the MQTT client and returns: like
// ChirpStack's asynchronous MQTT client, the uplink path never waits on the
// broker. (A broker restart can leave a paho publish token pending for
// good; a handler waiting on it held Restart up for its 10 s timeout.)
// Publish order is kept: paho queues in call order. Failures are logged.
func (s *Server) publishAsync(topic string, b []byte) paho.Token {
	t := s.mqc().Publish(topic, 0, false, b)
	s.watchOnce.Do(func() {
		s.watch = mqttconn.NewWatcher(10*time.Second, func(topic string, err error) {
			s.logLate("chirpstack: publish %s: %v", topic, err)
		})
	})
	if s.watch != nil { // nil: closed before the first publish
		s.watch.Add(topic, t)
	}
	return t
}

// deviceInfoLocked builds integration.DeviceInfo (uplink/data.rs
// set_device_info): application tags, overlaid with device-profile tags,
// overlaid with device tags. Caller holds s.mu.
func (s *Server) deviceInfoLocked(dev *deviceRow) *integration.DeviceInfo {
	di := &integration.DeviceInfo{
		ApplicationId:      dev.pb.ApplicationId,
		DeviceProfileId:    dev.pb.DeviceProfileId,
		DeviceName:         dev.pb.Name,
		DevEui:             dev.pb.DevEui,
		DeviceClassEnabled: dev.class,
		Tags:               map[string]string{},
	}
	app := s.apps[dev.pb.ApplicationId]
	if app != nil {
		maps.Copy(di.Tags, app.pb.Tags)
	}
	if dp := s.profiles[dev.pb.DeviceProfileId]; dp != nil {
		di.DeviceProfileName = dp.pb.Name
		maps.Copy(di.Tags, dp.pb.Tags)
	}
	maps.Copy(di.Tags, dev.pb.Tags)
	if app != nil {
		di.ApplicationName = app.pb.Name
		di.TenantId = app.pb.TenantId
		if t := s.tenants[app.pb.TenantId]; t != nil {
			di.TenantName = t.pb.Name
		}
	}
	return di
}

// logEventLocked builds a `log` integration event for dev. Caller holds s.mu.
func (s *Server) logEventLocked(dev *deviceRow, level integration.LogLevel, code integration.LogCode, desc string, ctx map[string]string) pendingEvent {
	var eui lorawan.EUI64
	_ = eui.UnmarshalText([]byte(dev.pb.DevEui))
	return pendingEvent{appID: dev.pb.ApplicationId, devEUI: eui, typ: "log", msg: &integration.LogEvent{
		Time: timestamppb.Now(), DeviceInfo: s.deviceInfoLocked(dev),
		Level: level, Code: code, Description: desc, Context: ctx,
	}}
}
