package shiftkey

import "context"

type admissionKey struct{}

// WithAdmission returns ctx in which LeaveAdmission calls leave: the API
// admits a request to its CPU work (admission.Gate) and the store lets it
// go when it starts waiting for a commit. leave must be safe to call more
// than once.
func WithAdmission(ctx context.Context, leave func()) context.Context {
	return context.WithValue(ctx, admissionKey{}, leave)
}

// LeaveAdmission gives up the request's place among those doing CPU work,
// if it holds one: a store calls it before it waits for its writer, so
// that no request holds a place while it waits.
func LeaveAdmission(ctx context.Context) {
	if leave, ok := ctx.Value(admissionKey{}).(func()); ok {
		leave()
	}
}
