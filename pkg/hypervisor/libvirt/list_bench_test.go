package libvirt

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkList200 lists 200 defined domains on the in-process test driver.
// It measures gale's per-domain overhead (XML parsing, metadata), not RPC
// latency: the test driver has no daemon.
func BenchmarkList200(b *testing.B) {
	d := newTestDriver(b)
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		if err := d.Define(ctx, testSpec(fmt.Sprintf("vm-%03d", i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		list, err := d.List(ctx)
		if err != nil || len(list) != 200 {
			b.Fatalf("List = %d domains, %v", len(list), err)
		}
	}
}
