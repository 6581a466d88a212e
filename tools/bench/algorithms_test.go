package bench

import (
	"encoding/base64"
	"testing"
)

func TestTokenAlgorithm(t *testing.T) {
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name, raw, want string
		wantErr         bool
	}{
		{"ES256", seg(`{"alg":"ES256","kid":"k","typ":"at+jwt"}`) + "." + seg(`{}`) + ".sig", "ES256", false},
		{"HS256 without kid", seg(`{"alg":"HS256","typ":"at+jwt"}`) + ".e30.sig", "HS256", false},
		{"no alg", seg(`{"typ":"at+jwt"}`) + ".e30.sig", "", false},
		{"no dot", seg(`{"alg":"ES256"}`), "", true},
		{"header not base64url", "!!!.e30.sig", "", true},
		{"header not JSON", seg(`alg`) + ".e30.sig", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tokenAlgorithm(tt.raw)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("got %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
