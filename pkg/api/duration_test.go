package api

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Duration
		wantErr bool
	}{
		{"string", `"1m30s"`, Duration(90 * time.Second), false},
		{"nanoseconds", `1500000000`, Duration(1500 * time.Millisecond), false},
		{"bad string", `"soon"`, 0, true},
		{"object", `{}`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Duration
			err := json.Unmarshal([]byte(tt.in), &d)
			if (err != nil) != tt.wantErr || d != tt.want {
				t.Fatalf("Unmarshal(%s) = %v, %v; want %v, err %v", tt.in, d, err, tt.want, tt.wantErr)
			}
			if err == nil {
				out, _ := json.Marshal(d)
				var back Duration
				if err := json.Unmarshal(out, &back); err != nil || back != d {
					t.Fatalf("round trip %s -> %s -> %v", tt.in, out, back)
				}
			}
		})
	}
}
