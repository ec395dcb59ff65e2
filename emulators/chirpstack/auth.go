package chirpstack

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// API authentication follows ChirpStack's api/auth: the gRPC metadata key
// "authorization" carries "Bearer <jwt>", where the JWT is HS256-signed with the
// server's api.secret and has aud = iss = "chirpstack", sub = the API key id and
// typ = "key" (API keys carry no exp). A token whose key was deleted is refused.

type jwtClaims struct {
	Aud string `json:"aud"`
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Typ string `json:"typ"`
	Exp *int64 `json:"exp,omitempty"`
}

var b64 = base64.RawURLEncoding

func signJWT(secret []byte, c jwtClaims) (string, error) {
	hdr, err := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signing := b64.EncodeToString(hdr) + "." + b64.EncodeToString(body)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + b64.EncodeToString(mac.Sum(nil)), nil
}

func verifyJWT(secret []byte, tok string) (jwtClaims, bool) {
	var c jwtClaims
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return c, false
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &hdr) != nil || hdr.Alg != "HS256" {
		return c, false
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return c, false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return c, false
	}
	body, err := b64.DecodeString(parts[1])
	if err != nil || json.Unmarshal(body, &c) != nil {
		return c, false
	}
	return c, c.Aud == "chirpstack" && c.Iss == "chirpstack"
}

// authenticate checks the bearer token of an incoming call. Only ChirpStack
// services ("/api.*") are guarded; reflection and health stay open, as upstream.
func (s *Server) authenticate(ctx context.Context, fullMethod string) error {
	if !strings.HasPrefix(fullMethod, "/api.") {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return status.Error(codes.Unauthenticated, "no authorization provided")
	}
	tok, ok := strings.CutPrefix(vals[0], "Bearer ")
	if !ok {
		return status.Error(codes.Unauthenticated, "authorization header must start with 'Bearer '")
	}
	c, ok := verifyJWT(s.secret, strings.TrimSpace(tok))
	if !ok || c.Typ != "key" {
		return status.Error(codes.Unauthenticated, "invalid token")
	}
	s.mu.Lock()
	_, known := s.apiKeys[c.Sub]
	s.mu.Unlock()
	if !known {
		return status.Error(codes.Unauthenticated, "api key does not exist")
	}
	return nil
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.authenticate(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.authenticate(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}
