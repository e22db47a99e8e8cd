// Package probe checks the health of scale-set instances so that a load
// balancer only sends traffic to the ones that answer.
//
// A Spec says how to probe: a TCP connect to a port, or an HTTP GET of a
// path that must answer with a status from 200 to 399. Its text form, read
// by Parse and written by Spec.String, is
//
//	tcp:22
//	http:80/healthz?ready=1,interval=2s,timeout=1s,healthy=1,unhealthy=3
//
// Check runs one probe. A Tracker turns a series of probe results into a
// Status with hysteresis: an instance becomes Healthy only after
// Spec.Healthy consecutive successes and Unhealthy only after
// Spec.Unhealthy consecutive failures, so one lost packet does not take an
// instance out of rotation. A Prober runs one loop per target (Check, then
// wait Spec.Interval) and calls back when a target's Status changes.
//
// Parse and Validate errors are of kind errdefs.Invalid. The package keeps
// no global state apart from a shared HTTP transport with keep-alives off.
package probe
