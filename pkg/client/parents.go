package client

import (
	"context"
	"net/http"

	"github.com/galevm/gale/pkg/api"
)

// ListParents returns the saved parents clones are made from.
func (c *Client) ListParents(ctx context.Context) ([]api.Parent, error) {
	var out []api.Parent
	err := c.do(ctx, request{method: http.MethodGet, path: api.ParentsPath}, &out)
	return out, err
}

// DeleteParent removes a saved parent that has no clones.
func (c *Client) DeleteParent(ctx context.Context, name string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: expandPath(api.ParentPath, "name", name)}, nil)
}
