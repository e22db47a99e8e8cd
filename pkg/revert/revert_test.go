package revert

import (
	"errors"
	"reflect"
	"testing"
)

func TestReverter(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		success   bool
		failStep  int // index of the undo step that returns an error, -1 for none
		wantOrder []int
		wantErr   bool
	}{
		{name: "fail runs undo in reverse", failStep: -1, wantOrder: []int{2, 1, 0}},
		{name: "success runs nothing", success: true, failStep: -1, wantOrder: nil},
		{name: "a failing undo does not stop the others", failStep: 1, wantOrder: []int{2, 1, 0}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var order []int
			var reported []error
			r := New()
			r.OnError = func(err error) { reported = append(reported, err) }
			for i := 0; i < 3; i++ {
				r.Add(func() error {
					order = append(order, i)
					if i == tt.failStep {
						return boom
					}
					return nil
				})
			}
			if tt.success {
				r.Success()
			}
			err := r.Fail()
			if !reflect.DeepEqual(order, tt.wantOrder) {
				t.Fatalf("undo order = %v, want %v", order, tt.wantOrder)
			}
			if (err != nil) != tt.wantErr || (tt.wantErr && !errors.Is(err, boom)) {
				t.Fatalf("Fail() error = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr && len(reported) != 1 {
				t.Fatalf("OnError called %d times, want 1", len(reported))
			}
			if again := r.Fail(); again != nil || len(order) != len(tt.wantOrder) {
				t.Fatalf("second Fail ran steps again or returned %v", again)
			}
		})
	}
}
