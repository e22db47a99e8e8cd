package vm

import (
	"context"
	"testing"

	"github.com/galevm/gale/pkg/api"
)

// TestCreateRecordsImage checks that a create records, in the VM's row,
// the image and the image file its disk is an overlay of: the image
// service finds an image's users from these rows.
func TestCreateRecordsImage(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	op, err := h.svc.Create(ctx, api.CreateVMRequest{Name: "web", Image: "debian-12", SSHKeys: []string{testKey(t)}})
	if err != nil {
		t.Fatal(err)
	}
	if done, _ := h.wait(t, op); done.Status != api.OpSucceeded {
		t.Fatalf("op = %+v", done)
	}
	row, err := h.store.GetVM(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := h.cfg.Images.(stubImages).tmpl
	if row.Image != tmpl.Name || row.ImagePath != tmpl.Path || row.ImagePath == "" {
		t.Errorf("row image = %q at %q, want %q at %q", row.Image, row.ImagePath, tmpl.Name, tmpl.Path)
	}
}
