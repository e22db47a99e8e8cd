package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/galevm/gale/pkg/api"
)

// ListVMs returns every VM galed knows.
func (c *Client) ListVMs(ctx context.Context) ([]api.VM, error) {
	var vms []api.VM
	err := c.do(ctx, request{method: http.MethodGet, path: api.VMsPath}, &vms)
	return vms, err
}

// GetVM returns one VM; the error matches ErrNotFound if there is none.
func (c *Client) GetVM(ctx context.Context, name string) (*api.VM, error) {
	var vm api.VM
	if err := c.do(ctx, request{method: http.MethodGet, path: expandPath(api.VMPath, "name", name)}, &vm); err != nil {
		return nil, err
	}
	return &vm, nil
}

// CreateVM starts creating a VM and returns the operation doing it; follow
// it with WatchOperation.
func (c *Client) CreateVM(ctx context.Context, req api.CreateVMRequest) (*api.Operation, error) {
	return c.operation(ctx, request{method: http.MethodPost, path: api.VMsPath, body: req})
}

// DeleteOptions tune DeleteVM.
type DeleteOptions struct {
	// KeepDisk leaves the VM's disk in place (?keep_disk=true).
	KeepDisk bool
}

// DeleteVM starts deleting a VM and returns the operation doing it.
func (c *Client) DeleteVM(ctx context.Context, name string, opts DeleteOptions) (*api.Operation, error) {
	req := request{method: http.MethodDelete, path: expandPath(api.VMPath, "name", name)}
	if opts.KeepDisk {
		req.query = url.Values{api.QueryKeepDisk: {"true"}}
	}
	return c.operation(ctx, req)
}

// StartVM starts a stopped VM.
func (c *Client) StartVM(ctx context.Context, name string) (*api.Operation, error) {
	return c.action(ctx, name, "start", nil)
}

// StopVM shuts a VM down (ACPI, then power off after req.Timeout; at once
// with req.Force).
func (c *Client) StopVM(ctx context.Context, name string, req api.StopVMRequest) (*api.Operation, error) {
	return c.action(ctx, name, "stop", req)
}

// RestartVM stops and starts a VM; req works as in StopVM.
func (c *Client) RestartVM(ctx context.Context, name string, req api.StopVMRequest) (*api.Operation, error) {
	return c.action(ctx, name, "restart", req)
}

// action posts to /v1/vms/{name}/{action}.
func (c *Client) action(ctx context.Context, name, action string, body any) (*api.Operation, error) {
	path := expandPath(api.VMActionPath, "name", name, "action", action)
	return c.operation(ctx, request{method: http.MethodPost, path: path, body: body})
}

// operation performs req and decodes the Operation it answers with.
func (c *Client) operation(ctx context.Context, req request) (*api.Operation, error) {
	var op api.Operation
	if err := c.do(ctx, req, &op); err != nil {
		return nil, err
	}
	return &op, nil
}

// Exec runs a command in the guest through its agent and returns its exit
// code and output. A non-zero exit code is not an error.
func (c *Client) Exec(ctx context.Context, name string, req api.ExecRequest) (*api.ExecResponse, error) {
	var res api.ExecResponse
	path := expandPath(api.VMExecPath, "name", name)
	if err := c.do(ctx, request{method: http.MethodPost, path: path, body: req}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Logs returns the VM's logs (serial console and cloud-init output) as text.
func (c *Client) Logs(ctx context.Context, name string) (string, error) {
	path := expandPath(api.VMLogsPath, "name", name)
	resp, err := c.send(ctx, request{method: http.MethodGet, path: path, accept: "text/plain"})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read logs of %s: %w", name, err)
	}
	return string(b), nil
}
