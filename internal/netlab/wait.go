package netlab

import (
	"fmt"
	"time"
)

// PollInterval is how often WaitFor checks its condition.
const PollInterval = 50 * time.Millisecond

// WaitFor checks cond every PollInterval until it returns true, returns an
// error (which ends the wait at once) or timeout passes. The condition is
// always checked at least once, and once more at the deadline.
func WaitFor(timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("condition not met within %v", timeout)
		}
		time.Sleep(min(PollInterval, left))
	}
}
