package imageops

import (
	"context"
	"sync"
)

// flight is one download shared by every caller that wants the same image.
type flight struct {
	done chan struct{}
	err  error

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

// shared runs fn once per key at a time: callers that arrive while it runs
// wait for the same result and get its progress messages. fn runs in the
// service's context, so one caller giving up does not stop it for the
// others; the caller's ctx only bounds its own wait.
func (s *Service) shared(ctx context.Context, key string, fn func(ctx context.Context, report func(string)) error, progress func(string)) error {
	s.mu.Lock()
	f, ok := s.flights[key]
	if !ok {
		f = &flight{done: make(chan struct{}), subs: map[int]func(string){}}
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
	}
	s.mu.Unlock()
	unsubscribe := f.subscribe(progress)
	defer unsubscribe()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
