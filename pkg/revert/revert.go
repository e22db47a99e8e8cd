// Package revert undoes the completed steps of multi-step work that failed,
// so that a failed create leaves nothing behind.
//
// Use it like this:
//
//	r := revert.New()
//	defer r.Fail()
//	if err := makeDisk(); err != nil { return err }
//	r.Add(func() error { return removeDisk() })
//	...
//	r.Success()
//
// Fail runs the undo steps in reverse order unless Success was called first.
package revert

import "errors"

// Reverter collects undo steps. The zero value is not usable; call New.
type Reverter struct {
	undo []func() error
	done bool
	// OnError, when set, receives each error an undo step returns. Undo steps
	// keep running after one fails.
	OnError func(error)
	errs    []error
}

// New returns an empty Reverter.
func New() *Reverter { return &Reverter{} }

// Add registers an undo step for work that has just succeeded.
func (r *Reverter) Add(undo func() error) { r.undo = append(r.undo, undo) }

// Success marks the work complete: a later Fail does nothing.
func (r *Reverter) Success() { r.done = true }

// Fail runs the registered undo steps in reverse order, once, unless Success
// was called. It returns the joined errors of the steps that failed.
func (r *Reverter) Fail() error {
	if r.done {
		return nil
	}
	r.done = true
	for i := len(r.undo) - 1; i >= 0; i-- {
		if err := r.undo[i](); err != nil {
			r.errs = append(r.errs, err)
			if r.OnError != nil {
				r.OnError(err)
			}
		}
	}
	return errors.Join(r.errs...)
}
