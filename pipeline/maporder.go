package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
)

// mapOrdered applies f to every item that next yields, on workers
// goroutines, and hands the results to emit in the order next yielded them.
// It is glmkit's one parallel stage, built like zstd's ordered encoder: each
// job has a done channel; the dispatcher queues jobs in submission order on
// a channel of capacity 2×workers, which bounds the memory in flight, and
// the caller's goroutine waits on each job in turn and calls emit.
//
// next returns ok=false at the end of the input; it is passed the stage's
// context, which is done once the stage stops, so a next that blocks must
// also select on it. The first error from next,
// f or emit, or the end of ctx, stops the stage; mapOrdered returns that
// error after every goroutine it started has exited. A panic in f becomes
// an error. workers < 1 means 1; workers = 1 gives the same results.
func mapOrdered[In, Out any](ctx context.Context, workers int, next func(context.Context) (In, bool, error), f func(In) (Out, error), emit func(Out) error) error {
	if workers < 1 {
		workers = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan *orderedJob[In, Out], workers)
	results := make(chan *orderedJob[In, Out], 2*workers)

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				j.run(f)
			}
		}()
	}
	var nextErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		nextErr = dispatch(ctx, next, work, results)
	}()
	err := collect(ctx, cancel, results, emit) // on the caller's goroutine
	wg.Wait()
	if err == nil {
		err = nextErr
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// An orderedJob is one item of mapOrdered: its input, f's result, and done,
// closed once f ran (or never will).
type orderedJob[In, Out any] struct {
	in   In
	out  Out
	err  error
	done chan struct{}
}

// run applies f to the job's input; a panic in f becomes the job's error.
func (j *orderedJob[In, Out]) run(f func(In) (Out, error)) {
	defer func() {
		if r := recover(); r != nil {
			// An internal error: no stack trace for the user unless
			// GLMKIT_DEBUG asks for one.
			j.err = fmt.Errorf("pipeline: internal error: panic in worker: %v", r)
			if os.Getenv("GLMKIT_DEBUG") != "" {
				j.err = fmt.Errorf("%w\n%s", j.err, debug.Stack())
			}
		}
		close(j.done)
	}()
	j.out, j.err = f(j.in)
}

// dispatch reads the input and queues its jobs, in order, on results (for
// the collector) and on work (for the workers), until the input ends, next
// fails or ctx is done; it returns next's error.
func dispatch[In, Out any](ctx context.Context, next func(context.Context) (In, bool, error), work, results chan<- *orderedJob[In, Out]) error {
	defer close(results)
	defer close(work)
	for {
		in, ok, err := next(ctx)
		if err != nil || !ok {
			return err
		}
		j := &orderedJob[In, Out]{in: in, done: make(chan struct{})}
		select {
		case results <- j:
		case <-ctx.Done():
			return nil
		}
		select {
		case work <- j:
		case <-ctx.Done():
			close(j.done) // never run; the collector stops at ctx anyway
			return nil
		}
	}
}

// collect waits for each job in turn and emits its result; after the first
// error (a job's, emit's or ctx's) it cancels the stage and drains the rest.
func collect[In, Out any](ctx context.Context, cancel func(), results <-chan *orderedJob[In, Out], emit func(Out) error) error {
	var err error
	for j := range results {
		<-j.done
		if err != nil {
			continue // drain
		}
		if err = j.err; err == nil {
			if err = ctx.Err(); err == nil {
				err = emit(j.out)
			}
		}
		if err != nil {
			cancel()
		}
	}
	return err
}

// forEach runs do(ctx, i) for i in 0..n-1 on up to workers goroutines,
// starting them in order, and returns the first error in index order: the
// one a loop over i would return. A failure at i cancels the context of
// every item after i that is running and skips those not started, never
// one before i, so that error does not depend on timing.
func forEach(ctx context.Context, n, workers int, do func(ctx context.Context, i int) error) error {
	var (
		mu      sync.Mutex
		failed  = n // the first failed item
		running = map[int]context.CancelFunc{}
		errs    = make([]error, n)
	)
	one := func(i int) {
		mu.Lock()
		if i > failed {
			mu.Unlock()
			return
		}
		ictx, cancel := context.WithCancel(ctx)
		running[i] = cancel
		mu.Unlock()
		err := do(ictx, i)
		mu.Lock()
		defer mu.Unlock()
		delete(running, i)
		cancel()
		if err == nil || i > failed && ctx.Err() == nil && errors.Is(err, context.Canceled) {
			return // no failure, or stopped for a failure before it
		}
		errs[i] = err
		if i < failed {
			failed = i
			for j, c := range running {
				if j > i {
					c()
				}
			}
		}
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(workers, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				one(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
