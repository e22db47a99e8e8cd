package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/autoscale"
)

// CreateSet records a scale set; galed then makes its instances.
func (c *Client) CreateSet(ctx context.Context, req api.CreateSetRequest) (*api.ScaleSet, error) {
	var out api.ScaleSet
	err := c.do(ctx, request{method: http.MethodPost, path: api.SetsPath, body: req}, &out)
	return &out, err
}

// ListSets returns every scale set.
func (c *Client) ListSets(ctx context.Context) ([]api.ScaleSet, error) {
	var out []api.ScaleSet
	err := c.do(ctx, request{method: http.MethodGet, path: api.SetsPath}, &out)
	return out, err
}

// GetSet returns one scale set.
func (c *Client) GetSet(ctx context.Context, name string) (*api.ScaleSet, error) {
	var out api.ScaleSet
	err := c.do(ctx, request{method: http.MethodGet, path: expandPath(api.SetPath, "name", name)}, &out)
	return &out, err
}

// DeleteSet starts deleting a set and all its instances.
func (c *Client) DeleteSet(ctx context.Context, name string) (*api.ScaleSet, error) {
	var out api.ScaleSet
	err := c.do(ctx, request{method: http.MethodDelete, path: expandPath(api.SetPath, "name", name)}, &out)
	return &out, err
}

// ScaleSet sets a set's capacity.
func (c *Client) ScaleSet(ctx context.Context, name string, capacity int) (*api.ScaleSet, error) {
	var out api.ScaleSet
	err := c.do(ctx, request{method: http.MethodPost, path: expandPath(api.SetScalePath, "name", name), body: api.ScaleRequest{Capacity: capacity}}, &out)
	return &out, err
}

// UpdateSet makes a new model version (the call returns once the new
// model is proven, which may take a cold boot).
func (c *Client) UpdateSet(ctx context.Context, name string, req api.UpdateSetRequest) (*api.ScaleSet, error) {
	var out api.ScaleSet
	err := c.do(ctx, request{method: http.MethodPost, path: expandPath(api.SetModelPath, "name", name), body: req}, &out)
	return &out, err
}

// UpgradeSet starts (or with req.Cancel stops) a set's upgrade.
func (c *Client) UpgradeSet(ctx context.Context, name string, req api.UpgradeRequest) (*api.ScaleSet, error) {
	var out api.ScaleSet
	err := c.do(ctx, request{method: http.MethodPost, path: expandPath(api.SetUpgradePath, "name", name), body: req}, &out)
	return &out, err
}

// SetInstances returns a set's instances.
func (c *Client) SetInstances(ctx context.Context, name string) ([]api.SetInstance, error) {
	var out []api.SetInstance
	err := c.do(ctx, request{method: http.MethodGet, path: expandPath(api.SetInstancesPath, "name", name)}, &out)
	return out, err
}

// SetInstanceAction runs restart, reimage, delete, protect or unprotect on
// one instance.
func (c *Client) SetInstanceAction(ctx context.Context, set, instance, action string, prot api.ProtectRequest) error {
	if action == "delete" {
		return c.do(ctx, request{method: http.MethodDelete, path: expandPath(api.SetInstancePath, "name", set, "instance", instance)}, nil)
	}
	return c.do(ctx, request{method: http.MethodPost, path: expandPath(api.SetInstanceActPath, "name", set, "instance", instance, "action", action), body: prot}, nil)
}

// SetActivity returns a set's activity records after id after.
func (c *Client) SetActivity(ctx context.Context, name string, after int64) ([]api.Activity, error) {
	var out []api.Activity
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	err := c.do(ctx, request{method: http.MethodGet, path: expandPath(api.SetActivityPath, "name", name), query: q}, &out)
	return out, err
}

// FollowSetActivity calls fn with a set's activity records after after and
// then as they happen, until ctx ends, the set is deleted or fn returns an
// error.
func (c *Client) FollowSetActivity(ctx context.Context, name string, after int64, fn func(api.Activity) error) error {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}, "follow": {"true"}}
	resp, err := c.send(ctx, request{method: http.MethodGet, path: expandPath(api.SetActivityPath, "name", name), query: q, accept: "text/event-stream"})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return readEvents(resp.Body, func(data string) error {
		var a api.Activity
		if err := json.Unmarshal([]byte(data), &a); err != nil {
			return fmt.Errorf("decode activity: %w", err)
		}
		return fn(a)
	})
}

// Events calls fn with every event of the global stream of kinds (all when
// empty) until ctx ends or fn returns an error.
func (c *Client) Events(ctx context.Context, kinds string, fn func(api.BusEvent) error) error {
	q := url.Values{}
	if kinds != "" {
		q.Set("kind", kinds)
	}
	resp, err := c.send(ctx, request{method: http.MethodGet, path: api.EventsPath, query: q, accept: "text/event-stream"})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return readEvents(resp.Body, func(data string) error {
		var ev api.BusEvent
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return fmt.Errorf("decode event: %w", err)
		}
		return fn(ev)
	})
}

// SetAutoscale replaces a set's autoscale settings.
func (c *Client) SetAutoscale(ctx context.Context, name string, s autoscale.Settings) (*api.AutoscaleView, error) {
	var out api.AutoscaleView
	err := c.do(ctx, request{method: http.MethodPut, path: expandPath(api.SetAutoscalePath, "name", name), body: s}, &out)
	return &out, err
}

// EnableAutoscale turns a set's autoscale settings on or off.
func (c *Client) EnableAutoscale(ctx context.Context, name string, on bool) (*api.AutoscaleView, error) {
	var out api.AutoscaleView
	q := url.Values{"enabled": {strconv.FormatBool(on)}}
	err := c.do(ctx, request{method: http.MethodPost, path: expandPath(api.SetAutoscalePath, "name", name), query: q}, &out)
	return &out, err
}

// Autoscale returns a set's autoscale settings, state and latest decision;
// with explain, also what it would decide now.
func (c *Client) Autoscale(ctx context.Context, name string, explain bool) (*api.AutoscaleView, error) {
	var out api.AutoscaleView
	q := url.Values{"explain": {strconv.FormatBool(explain)}}
	err := c.do(ctx, request{method: http.MethodGet, path: expandPath(api.SetAutoscalePath, "name", name), query: q}, &out)
	return &out, err
}

// SetMetrics summarises a set's instances' metrics over the last since.
func (c *Client) SetMetrics(ctx context.Context, name string, since time.Duration) (*api.SetMetrics, error) {
	var out api.SetMetrics
	q := url.Values{}
	if since > 0 {
		q.Set("since", since.String())
	}
	err := c.do(ctx, request{method: http.MethodGet, path: expandPath(api.SetMetricsPath, "name", name), query: q}, &out)
	return &out, err
}

// PutMetric records one sample of a VM's custom metric.
func (c *Client) PutMetric(ctx context.Context, m api.MetricPut) error {
	return c.do(ctx, request{method: http.MethodPost, path: api.MetricsPath, body: m}, nil)
}

// Prometheus returns galed's metrics in Prometheus text format.
func (c *Client) Prometheus(ctx context.Context) (string, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, path: api.PrometheusPath, accept: "text/plain"})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
