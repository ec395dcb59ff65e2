package chirpstack

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/brocaar/lorawan"
	"github.com/chirpstack/chirpstack/api/go/v4/api"
	"github.com/chirpstack/chirpstack/api/go/v4/common"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tap2join/tap2join/fixtures/proto/lwkeys"
)

// The in-memory "database". All maps are guarded by Server.mu. Stored protobuf
// messages are private clones; responses hand out clones too, so callers can
// never alias server state.

type tenantRow struct {
	pb               *api.Tenant
	created, updated time.Time
}

type applicationRow struct {
	pb               *api.Application
	created, updated time.Time
}

type deviceProfileRow struct {
	pb               *api.DeviceProfile
	created, updated time.Time
}

type gatewayRow struct {
	pb                         *api.Gateway
	created, updated, lastSeen time.Time
}

type deviceRow struct {
	pb                         *api.Device
	created, updated, lastSeen time.Time
	class                      common.DeviceClass
	devAddr                    lorawan.DevAddr // set by the last successful join
	joined                     bool
	queue                      []*queueItem
	status                     *api.DeviceStatus // from the last DevStatusAns
}

// deviceKeysRow mirrors ChirpStack's device_keys table (storage/device_keys.rs):
// join_nonce starts at 0 and the set of used DevNonces is kept per JoinEUI.
type deviceKeysRow struct {
	nwkKey, appKey, genAppKey lorawan.AES128Key
	joinNonce                 uint32
	devNonces                 map[lorawan.EUI64]map[lorawan.DevNonce]struct{}
	created, updated          time.Time
}

// session is the device-session created by a successful join (ChirpStack's
// internal.DeviceSession, reduced to what the uplink path needs).
type session struct {
	devEUI, joinEUI lorawan.EUI64
	devAddr         lorawan.DevAddr
	macVersion      lorawan.MACVersion
	keys            lwkeys.SessionKeys
	fCntUp          uint32 // next expected uplink frame counter (ChirpStack semantics)
	nFCntDown       uint32 // next network downlink counter (1.0: the only counter)
	aFCntDown       uint32 // next application downlink counter (1.1)
	confFCnt        uint32 // FCnt of the last confirmed downlink (for 1.1 MIC of an ACK)
	skipFCntCheck   bool
	rx1Delay        uint8
	// The session's RX parameters (RX2 frequency and data rate, RX1 DR
	// offset) and an RXParamSetupReq sent, not yet answered.
	rx2Freq        uint32
	rx2DR          uint8
	rx1DROffset    uint8
	pendingRXParam *lorawan.RXParamSetupReqPayload
	// extraChans are the region's user-defined channels the device knows
	// (index → Hz): from the JoinAccept's CFList, or NewChannelReq acked.
	extraChans        map[int]uint32
	pendingNewChannel []lorawan.NewChannelReqPayload
	pendingRX1Delay   uint8     // an RXTimingSetupReq sent, not yet answered (0: none)
	lastStatusReq     time.Time // last DevStatusReq sent (zero: none this session)
	adr               adrState  // adr.go
}

// queueItem is one entry of a device's downlink queue (DeviceService.Enqueue).
type queueItem struct {
	id        string
	fPort     uint8
	confirmed bool
	data      []byte
	fCntDown  uint32
	pending   bool // sent, waiting for tx-ack / device ack
}

// apiKeyRow is an API key; the JWT handed out carries its id as "sub".
type apiKeyRow struct {
	name    string
	isAdmin bool
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("chirpstack: crypto/rand: %v", err))
	}
	b[6] = (b[6] & 0x0f) | 0x40 // version 4
	b[8] = (b[8] & 0x3f) | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// parseUUID validates s the way ChirpStack's Uuid::from_str does and returns
// the canonical lower-case form. Malformed UUIDs are InvalidArgument in ChirpStack.
func parseUUID(field, s string) (string, error) {
	c := strings.ToLower(s)
	c = strings.ReplaceAll(c, "-", "")
	if len(c) != 32 {
		return "", status.Errorf(codes.InvalidArgument, "%s: invalid uuid %q", field, s)
	}
	if _, err := hex.DecodeString(c); err != nil {
		return "", status.Errorf(codes.InvalidArgument, "%s: invalid uuid %q", field, s)
	}
	return c[0:8] + "-" + c[8:12] + "-" + c[12:16] + "-" + c[16:20] + "-" + c[20:], nil
}

// parseEUI parses a 16-hex-digit EUI64 as lrwn's EUI64::from_str does:
// "" is the all-zero EUI, anything else not 8 hex bytes an lrwn error,
// which ChirpStack v4.19 answers with Internal (api/error.rs). Clients
// must not read "bad input" from the code alone (fixtures/lns does not).
func parseEUI(field, s string) (lorawan.EUI64, error) {
	var e lorawan.EUI64
	if s == "" {
		return e, nil
	}
	if len(s) != 16 {
		return e, status.Errorf(codes.Internal, "%s: expected 16 hex characters, got %d", field, len(s))
	}
	if err := e.UnmarshalText([]byte(s)); err != nil {
		return e, status.Errorf(codes.Internal, "%s: invalid EUI64 hex", field)
	}
	return e, nil
}

// parseKey parses a 32-hex-digit AES-128 key. An empty string is the zero key
// (as in ChirpStack: app_key is empty for 1.0.x devices); malformed hex is an
// lrwn error, Internal. The error never echoes the value: it is key
// material.
func parseKey(field, s string) (lorawan.AES128Key, error) {
	var k lorawan.AES128Key
	if s == "" {
		return k, nil
	}
	if len(s) != 32 {
		return k, status.Errorf(codes.Internal, "%s: expected 32 hex characters, got %d", field, len(s))
	}
	if err := k.UnmarshalText([]byte(s)); err != nil {
		return k, status.Errorf(codes.Internal, "%s: invalid AES128 key hex", field)
	}
	return k, nil
}

func notFound(kind, id string) error {
	// ChirpStack: Error::NotFound => "Object does not exist (id: ...)".
	return status.Errorf(codes.NotFound, "Object does not exist (id: %s %s)", kind, id)
}

// duplicateKey is what ChirpStack v4.19 answers a create whose primary key
// exists: storage/error.rs from_diesel maps only NotFound, so PostgreSQL's
// unique violation reaches the client as Internal with its text.
func duplicateKey(table string) error {
	return status.Errorf(codes.Internal, "duplicate key value violates unique constraint \"%s_pkey\"", table)
}

func clone[T proto.Message](m T) T {
	return proto.Clone(m).(T)
}

func keyHex(k lorawan.AES128Key) string { return hex.EncodeToString(k[:]) }

// macVersion maps ChirpStack's MacVersion to the brocaar MIC scheme.
func macVersion(v common.MacVersion) lorawan.MACVersion {
	if v == common.MacVersion_LORAWAN_1_1_0 {
		return lorawan.LoRaWAN1_1
	}
	return lorawan.LoRaWAN1_0
}
