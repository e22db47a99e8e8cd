package client

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/galevm/gale/pkg/api"
)

// ListImages returns the catalog entries and local images.
func (c *Client) ListImages(ctx context.Context) ([]api.Image, error) {
	var images []api.Image
	err := c.do(ctx, request{method: http.MethodGet, path: api.ImagesPath}, &images)
	return images, err
}

// ShowImage describes one image.
func (c *Client) ShowImage(ctx context.Context, name string) (*api.ImageDetail, error) {
	var d api.ImageDetail
	if err := c.do(ctx, request{method: http.MethodGet, path: expandPath(api.ImagePath, "name", name)}, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// PullImage starts (or joins) a download; follow it with WatchOperation.
func (c *Client) PullImage(ctx context.Context, req api.PullImageRequest) (*api.Operation, error) {
	return c.operation(ctx, request{method: http.MethodPost, path: api.ImagePullPath, body: req})
}

// BuildImage starts a build of a catalog recipe.
func (c *Client) BuildImage(ctx context.Context, name string) (*api.Operation, error) {
	return c.operation(ctx, request{method: http.MethodPost, path: expandPath(api.ImageBuildPath, "name", name)})
}

// ImportImage starts an import of a file or block device on galed's host.
func (c *Client) ImportImage(ctx context.Context, req api.ImportImageRequest) (*api.Operation, error) {
	return c.operation(ctx, request{method: http.MethodPost, path: api.ImageImportPath, body: req})
}

// UploadImage streams body to galed as the source of an import (req.Path
// is ignored). It returns once galed has the whole stream and started the
// import operation.
func (c *Client) UploadImage(ctx context.Context, req api.ImportImageRequest, body io.Reader) (*api.Operation, error) {
	q := url.Values{"name": {req.Name}, "format": {req.Format}}
	if req.Boot != "" {
		q.Set("boot", req.Boot)
	}
	if req.Prepare {
		q.Set("prepare", "true")
	}
	if req.NoPreflight {
		q.Set("no_preflight", "true")
	}
	if req.ReadyPort > 0 {
		q.Set("ready_port", strconv.Itoa(req.ReadyPort))
	}
	return c.operation(ctx, request{method: http.MethodPost, path: api.ImageUploadPath, query: q, raw: body})
}

// DeleteImage removes an image's local file.
func (c *Client) DeleteImage(ctx context.Context, name string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: expandPath(api.ImagePath, "name", name)}, nil)
}

// PruneImages removes what no VM needs (see api.PruneRequest).
func (c *Client) PruneImages(ctx context.Context, req api.PruneRequest) (*api.PruneResult, error) {
	var res api.PruneResult
	if err := c.do(ctx, request{method: http.MethodPost, path: api.ImagePrunePath, body: req}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
