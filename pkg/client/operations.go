package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/galevm/gale/pkg/api"
)

// GetOperation returns an operation's current status.
func (c *Client) GetOperation(ctx context.Context, id string) (*api.Operation, error) {
	return c.operation(ctx, request{method: http.MethodGet, path: expandPath(api.OperationPath, "id", id)})
}

// WatchOperation follows an operation's event stream, calling fn (if not
// nil) for every event, including the final one with Done set. It returns
// nil when the operation succeeded, an *OperationError (matching
// ErrOperationFailed) when it failed or was cancelled, and ctx's error when
// ctx ends first;
// the operation itself goes on in galed either way.
//
// A stream that ends before the Done event is not trusted: WatchOperation
// then asks for the operation's status and reports that.
func (c *Client) WatchOperation(ctx context.Context, id string, fn func(api.Event)) error {
	path := expandPath(api.OperationEventsPath, "id", id)
	resp, err := c.send(ctx, request{method: http.MethodGet, path: path, accept: "text/event-stream"})
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	var last api.Event
	done := false
	err = readEvents(resp.Body, func(data string) error {
		var ev api.Event
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return fmt.Errorf("bad event from operation %s: %w", id, err)
		}
		if fn != nil {
			fn(ev)
		}
		last = ev
		if ev.Done {
			done = true
			return errStopStream
		}
		return nil
	})
	switch {
	case done:
		return finalResult(id, last)
	case ctx.Err() != nil:
		return fmt.Errorf("watch operation %s: %w", id, ctx.Err())
	case err != nil:
		return err
	}
	// The stream ended early (galed restarted, a proxy cut it): ask.
	op, gerr := c.GetOperation(ctx, id)
	if gerr != nil {
		return fmt.Errorf("event stream of operation %s ended before it finished: %w", id, gerr)
	}
	switch op.Status {
	case api.OpSucceeded:
		return nil
	case api.OpFailed, api.OpCancelled:
		return &OperationError{Operation: id, Status: op.Status, Stage: op.Stage, Message: op.Error}
	}
	return fmt.Errorf("event stream of operation %s ended while it is still %s at stage %q: %w",
		id, op.Status, op.Stage, io.ErrUnexpectedEOF)
}

// finalResult turns the Done event into WatchOperation's result.
func finalResult(id string, ev api.Event) error {
	if ev.Status == api.OpFailed || (ev.Status != api.OpSucceeded && ev.Error != "") {
		opID := ev.Operation
		if opID == "" {
			opID = id
		}
		return &OperationError{Operation: opID, Status: ev.Status, Stage: ev.Stage, Message: ev.Error, Detail: ev.Detail}
	}
	return nil
}

// errStopStream ends readEvents without an error.
var errStopStream = errors.New("stop")

// readEvents parses a server-sent event stream from r and calls fn with the
// data of each event: the event's "data:" lines joined with newlines,
// dispatched at the blank line that ends the event. Comments (": ping"),
// "event:", "id:" and "retry:" fields are ignored, as are events without
// data. It returns nil at the end of the stream or when fn returns
// errStopStream, and fn's other errors as they are.
func readEvents(r io.Reader, fn func(data string) error) error {
	br := bufio.NewReader(r)
	var data []string
	dispatch := func() error {
		if len(data) == 0 {
			return nil
		}
		d := strings.Join(data, "\n")
		data = data[:0]
		return fn(d)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("read event stream: %w", err)
		}
		eof := err == io.EOF
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		switch {
		case line == "" && eof:
			// End of stream; an unterminated event is incomplete, drop it.
		case line == "":
			if ferr := dispatch(); ferr != nil {
				if errors.Is(ferr, errStopStream) {
					return nil
				}
				return ferr
			}
		case strings.HasPrefix(line, ":"):
			// comment, e.g. a heartbeat
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			if field == "data" {
				data = append(data, value)
			}
		}
		if eof {
			return nil
		}
	}
}
