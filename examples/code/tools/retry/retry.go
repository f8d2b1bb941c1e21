// SPDX-License-Identifier: Apache-2.0

// Package retry runs an operation again after failures, waiting longer each time.
package retry

import (
	"context"
	"math/rand"
	"time"
)

// Policy says how often and how long to wait.
type Policy struct {
	Attempts int
	Base     time.Duration
	Max      time.Duration
}

// Do calls op until it succeeds, the attempts run out or ctx is done.
func Do(ctx context.Context, p Policy, op func() error) error {
	var err error
	for attempt := 0; attempt < p.Attempts; attempt++ {
		if err = op(); err == nil {
			return nil
		}
		wait := p.Base << attempt
		if wait > p.Max {
			wait = p.Max
		}
		jitter := time.Duration(rand.Int63n(int64(wait) + 1))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(jitter):
		}
	}
	return err
}
