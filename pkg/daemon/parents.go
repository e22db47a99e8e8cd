package daemon

import (
	"context"
	"net/http"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/parent"
	"github.com/galevm/gale/pkg/server/httpapi"
	"github.com/galevm/gale/pkg/store"
)

// cloneRecords tells the parent manager which VMs are clones of a parent,
// from the store's rows (a clone's row names its parent from the moment
// the clone begins).
type cloneRecords struct{ store *store.Store }

// ClonesOf implements parent.Usage.
func (c cloneRecords) ClonesOf(ctx context.Context, name string) ([]string, error) {
	rows, err := c.store.ListVMs(ctx)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, r := range rows {
		if r.Parent == name {
			out = append(out, r.Name)
		}
	}
	return out, nil
}

// parentRoutes serves the saved parents: GET /v1/parents and
// DELETE /v1/parents/{name} (refused while the parent has clones).
type parentRoutes struct{ m *parent.Manager }

// Routes implements httpapi.Service.
func (p parentRoutes) Routes(r httpapi.Router) {
	r.Handle("GET "+api.ParentsPath, func(w http.ResponseWriter, r *http.Request) error {
		infos, err := p.m.List(r.Context())
		if err != nil {
			return err
		}
		out := make([]api.Parent, 0, len(infos))
		for _, i := range infos {
			out = append(out, api.Parent{
				Name: i.Name, Image: i.Image, CPUs: i.CPUs, MemoryMiB: i.MemoryMiB, DiskBytes: i.DiskBytes,
				Network: i.Network, UserData: i.UserData, StateBytes: i.StateBytes, DiskUsedBytes: i.DiskBytesUsed,
				BuiltAt: i.BuiltAt, BuildTime: api.Duration(i.BuildTime), LastUsed: i.LastUsed, Clones: i.Clones,
			})
		}
		return httpapi.JSON(w, http.StatusOK, out)
	})
	r.Handle("DELETE "+api.ParentPath, func(w http.ResponseWriter, r *http.Request) error {
		if err := p.m.Remove(r.Context(), r.PathValue("name")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
