package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/galevm/gale/pkg/api"
)

// Version returns galed's version, API version and accelerator.
func (c *Client) Version(ctx context.Context) (*api.VersionInfo, error) {
	var v api.VersionInfo
	if err := c.do(ctx, request{method: http.MethodGet, path: api.VersionPath}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Doctor returns galed's host checks, each with a fix when it failed.
func (c *Client) Doctor(ctx context.Context) ([]api.Check, error) {
	var checks []api.Check
	err := c.do(ctx, request{method: http.MethodGet, path: api.DoctorPath}, &checks)
	return checks, err
}

// ListNetworks returns galed's libvirt networks.
func (c *Client) ListNetworks(ctx context.Context) ([]api.Network, error) {
	var nets []api.Network
	err := c.do(ctx, request{method: http.MethodGet, path: api.NetworksPath}, &nets)
	return nets, err
}

// CreateNetwork creates a network and returns it as galed reports it.
func (c *Client) CreateNetwork(ctx context.Context, req api.CreateNetworkRequest) (*api.Network, error) {
	resp, err := c.send(ctx, request{method: http.MethodPost, path: api.NetworksPath, body: req})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	n := api.Network{Name: req.Name, Mode: req.Mode, CIDR: req.CIDR}
	// The body is the network; tolerate an empty 201.
	if err := json.NewDecoder(resp.Body).Decode(&n); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decode created network %s: %w", req.Name, err)
	}
	return &n, nil
}

// DeleteNetwork deletes a network.
func (c *Client) DeleteNetwork(ctx context.Context, name string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: expandPath(api.NetworkPath, "name", name)}, nil)
}
