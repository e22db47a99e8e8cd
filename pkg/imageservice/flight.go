package imageservice

import (
	"context"
	"fmt"
	"sync"

	"github.com/galevm/gale/pkg/operation"
)

// flight is one download shared by every caller that wants the same image.
type flight struct {
	source string // what is downloaded, to where (see source.key)
	done   chan struct{}
	err    error

	mu   sync.Mutex
	last string
	subs map[int]func(string)
	next int
}

func (f *flight) report(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = msg
	for _, fn := range f.subs {
		fn(msg)
	}
}

func (f *flight) subscribe(fn func(string)) (cancel func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fn == nil {
		return func() {}
	}
	if f.last != "" {
		fn(f.last)
	}
	id := f.next
	f.next++
	f.subs[id] = fn
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, id)
	}
}

// shared runs fn once per key (an image name) at a time and waits for it:
// see join and wait.
func (s *Service) shared(ctx context.Context, key, source string, fn func(ctx context.Context, report func(string)) error, progress func(string)) error {
	f, err := s.join(key, source, fn)
	if err != nil {
		return err
	}
	return f.wait(ctx, progress)
}

// join returns the running download of key when it fetches the same
// source, or starts fn as that download. A caller for another source of
// the same key gets operation.ErrBusy. fn runs in the service's context,
// so one caller giving up does not stop it for the others.
func (s *Service) join(key, source string, fn func(ctx context.Context, report func(string)) error) (*flight, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.flights[key]; ok {
		if f.source != source {
			return nil, fmt.Errorf("%w: %q is being downloaded from another source", operation.ErrBusy, key)
		}
		return f, nil
	}
	f := &flight{source: source, done: make(chan struct{}), subs: map[int]func(string){}}
	s.flights[key] = f
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := fn(s.ctx, f.report)
		s.mu.Lock()
		delete(s.flights, key)
		s.mu.Unlock()
		f.err = err
		close(f.done)
	}()
	return f, nil
}

// wait follows f until it ends (its result) or ctx does (ctx's error),
// passing its progress messages to progress (may be nil).
func (f *flight) wait(ctx context.Context, progress func(string)) error {
	unsubscribe := f.subscribe(progress)
	defer unsubscribe()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pulling returns the source of the running download of key, if any.
func (s *Service) pulling(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.flights[key]
	if !ok {
		return "", false
	}
	return f.source, true
}
