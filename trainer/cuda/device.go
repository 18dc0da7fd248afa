package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"
)

// device runs every CUDA call on one goroutine locked to its OS thread: a
// context is current per thread, and goroutines move between threads. The
// goroutine lives from New to Close; it unlocks its thread before it ends,
// so the thread goes back to the scheduler instead of exiting (purego
// issue #485 concerns locked threads that exit).
type device struct {
	reqs chan func()
	done chan error
}

// startDevice starts the goroutine and runs init on it; on error the
// goroutine has ended.
func startDevice(init func() error) (*device, error) {
	d := &device{reqs: make(chan func()), done: make(chan error, 1)}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := protect(init); err != nil {
			errc <- err
			return
		}
		errc <- nil
		for f := range d.reqs {
			f()
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return d, nil
}

// do runs f on the device goroutine and waits for it. A panic in f is
// returned as an error (it is a bug in an op, and the goroutine must live
// on). do must not be called concurrently (a Backend is not safe for
// concurrent use).
func (d *device) do(f func() error) error {
	d.reqs <- func() { d.done <- protect(f) }
	return <-d.done
}

// stop ends the goroutine after the requests sent so far.
func (d *device) stop() { close(d.reqs) }

func protect(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic on the device goroutine: %v", r)
		}
	}()
	return f()
}

// ----------------------------------------------------------------------------
// gpu: the state the device goroutine owns

// ringSlots and ringMax size the staging ring of host-to-device copies:
// slots of pinned host memory and device memory of at most ringMax bytes.
const (
	ringSlots = 4
	ringMax   = 8 << 20
)

// stage is one slot of the staging ring: a copy goes host → pinned host
// (memcpy) → device staging (copy stream) → destination (compute stream,
// after the copy's event), so the transfer overlaps the compute work queued
// before it, which may still read the destination.
type stage struct {
	host   unsafe.Pointer // cuMemHostAlloc
	dev    uint64
	size   int
	copied uintptr // event on the copy stream: host → device staging done
	done   uintptr // event on the compute stream: staging → destination done
	used   bool
}

// launchBuf holds a kernel launch's parameter buffer and the extra array
// that points at it. It is pinned for the device's life, so the addresses
// in extra stay valid.
type launchBuf struct {
	params [4096]byte
	size   uint64
	extra  [5]uintptr
}

// gpu is the CUDA state: touched only on the device goroutine.
type gpu struct {
	drv  *driver
	blas *cublas
	rtc  *nvrtc
	fp32 bool // float32 GEMM operands (Options.FP32), else bf16

	dev     int32
	ctx     uintptr
	compute uintptr // stream of all kernels, GEMMs and copies into place
	copy    uintptr // stream of the host-to-device transfers
	handle  uintptr // cuBLAS
	module  uintptr
	funcs   [numKernels]uintptr
	kinds   [numKernels][]paramKind

	lb     *launchBuf
	pinner runtime.Pinner
	packed []byte

	ring [ringSlots]stage
	next int

	ws     uint64 // workspace arena, reused by every op
	wsSize uint64

	dropJump  uint64            // the dropout kernel's jump table (512 entries)
	attnJumps map[[2]int]uint64 // (chunk, block) → the attention kernels' jump tables
	allocs    map[uint64]uint64 // live allocations → bytes
}

// check is drv.check.
func (g *gpu) check(r result, call string, args ...any) error { return g.drv.check(r, call, args...) }

// alloc returns bytes of device memory (at least 1).
func (g *gpu) alloc(bytes uint64) (uint64, error) {
	bytes = max(bytes, 1)
	var p uint64
	if err := g.check(g.drv.memAlloc(&p, bytes), "cuMemAlloc_v2(%d bytes)", bytes); err != nil {
		var free, total uint64
		if g.drv.memGetInfo(&free, &total) == cudaSuccess {
			err = fmt.Errorf("%w (%.2f of %.2f GiB free)", err, gib(free), gib(total))
		}
		return 0, err
	}
	g.allocs[p] = bytes
	return p, nil
}

// free releases an allocation after the work queued on it.
func (g *gpu) free(p uint64) error {
	if p == 0 {
		return nil
	}
	if err := g.syncStreams(); err != nil {
		return err
	}
	delete(g.allocs, p)
	return g.check(g.drv.memFree(p), "cuMemFree_v2")
}

func (g *gpu) syncStreams() error {
	return errors.Join(
		g.check(g.drv.streamSynchronize(g.copy), "cuStreamSynchronize(copy stream)"),
		g.check(g.drv.streamSynchronize(g.compute), "cuStreamSynchronize(compute stream)"))
}

// scratch carves the workspace into buffers of the given sizes in bytes,
// each 256-byte aligned, growing it when needed. The buffers are valid
// until the next scratch call; since all work runs on the compute stream
// in order, an op may reuse the workspace the previous op's kernels used.
func (g *gpu) scratch(sizes ...uint64) ([]uint64, error) {
	var total uint64
	for _, s := range sizes {
		total += (s + 255) &^ 255
	}
	if total > g.wsSize {
		if err := g.free(g.ws); err != nil {
			return nil, err
		}
		g.ws, g.wsSize = 0, 0
		n := max(total+total/4, 1<<20)
		p, err := g.alloc(n)
		if err != nil {
			return nil, fmt.Errorf("workspace of %d bytes: %w", n, err)
		}
		g.ws, g.wsSize = p, n
	}
	out := make([]uint64, len(sizes))
	off := g.ws
	for i, s := range sizes {
		out[i] = off
		off += (s + 255) &^ 255
	}
	return out, nil
}

// upload copies src to device address dst through the staging ring,
// asynchronously: it returns once src has been copied to pinned memory.
func (g *gpu) upload(dst uint64, src []byte) error {
	for len(src) > 0 {
		s := &g.ring[g.next]
		g.next = (g.next + 1) % len(g.ring)
		if s.used {
			if err := g.check(g.drv.eventSynchronize(s.done), "cuEventSynchronize(staging slot)"); err != nil {
				return err
			}
			s.used = false
		}
		n := min(len(src), ringMax)
		if s.size < n {
			size := min(max(n, 2*s.size, 64<<10), ringMax)
			if err := g.growStage(s, size); err != nil {
				return err
			}
		}
		copy(unsafe.Slice((*byte)(s.host), n), src[:n])
		err := errors.Join(
			g.check(g.drv.memcpyHtoDAsync(s.dev, s.host, uint64(n), g.copy), "cuMemcpyHtoDAsync_v2(%d bytes)", n),
			g.check(g.drv.eventRecord(s.copied, g.copy), "cuEventRecord"),
			g.check(g.drv.streamWaitEvent(g.compute, s.copied, 0), "cuStreamWaitEvent"),
			g.check(g.drv.memcpyDtoDAsync(dst, s.dev, uint64(n), g.compute), "cuMemcpyDtoDAsync_v2(%d bytes)", n),
			g.check(g.drv.eventRecord(s.done, g.compute), "cuEventRecord"))
		if err != nil {
			return err
		}
		s.used = true
		dst += uint64(n)
		src = src[n:]
	}
	return nil
}

// growStage replaces an idle slot's buffers by ones of size bytes.
func (g *gpu) growStage(s *stage, size int) error {
	if s.host != nil {
		if err := g.check(g.drv.memFreeHost(s.host), "cuMemFreeHost"); err != nil {
			return err
		}
		s.host = nil
	}
	if s.dev != 0 {
		if err := g.free(s.dev); err != nil {
			return err
		}
		s.dev = 0
	}
	s.size = 0
	if err := g.check(g.drv.memHostAlloc(&s.host, uint64(size), memHostAllocPortable), "cuMemHostAlloc(%d bytes)", size); err != nil {
		s.host = nil
		return err
	}
	p, err := g.alloc(uint64(size))
	if err != nil {
		return err
	}
	s.dev, s.size = p, size
	return nil
}

// download copies bytes from device address src into dst (host memory)
// after the queued work, and waits for it.
func (g *gpu) download(dst unsafe.Pointer, src uint64, bytes uint64) error {
	if bytes == 0 {
		return nil
	}
	return errors.Join(
		g.check(g.drv.memcpyDtoHAsync(dst, src, bytes, g.compute), "cuMemcpyDtoHAsync_v2(%d bytes)", bytes),
		g.check(g.drv.streamSynchronize(g.compute), "cuStreamSynchronize"))
}

// memsetZero zeroes n 32-bit words at p.
func (g *gpu) memsetZero(p uint64, n int) error {
	if n == 0 {
		return nil
	}
	return g.check(g.drv.memsetD32Async(p, 0, uint64(n), g.compute), "cuMemsetD32Async(%d words)", n)
}

// maxGrid caps the blocks of a grid-stride launch.
const maxGrid = 1 << 20

// launch runs kernel k with a grid of gx×gy blocks of block threads on the
// compute stream. Arguments follow kernelSigs (see packParams).
func (g *gpu) launch(k kernel, gx, gy, block int, args ...any) error {
	p, err := packParams(g.packed[:0], g.kinds[k], args)
	if err != nil {
		return fmt.Errorf("launch %s: %w", k, err)
	}
	g.packed = p
	if len(p) > len(g.lb.params) {
		return fmt.Errorf("launch %s: %d bytes of parameters", k, len(p))
	}
	copy(g.lb.params[:], p)
	g.lb.size = uint64(len(p))
	r := g.drv.launchKernel(g.funcs[k], uint32(gx), uint32(gy), 1, uint32(block), 1, 1, 0, g.compute,
		nil, unsafe.Pointer(&g.lb.extra[0]))
	return g.check(r, "cuLaunchKernel(%s, grid %d×%d, block %d)", k, gx, gy, block)
}

// launch1 runs a grid-stride kernel over n elements (nothing for n = 0).
func (g *gpu) launch1(k kernel, n int64, args ...any) error {
	if n <= 0 {
		return nil
	}
	const block = 256
	grid := min((n+block-1)/block, maxGrid)
	return g.launch(k, int(grid), 1, block, args...)
}

// rowBlock is the block size of a kernel with one block per row of n
// elements: a power of two in [32, 1024], about n/per threads.
func rowBlock(n, per int) int {
	b := 32
	for b < 1024 && b*per < n {
		b *= 2
	}
	return b
}

// attnJump returns the device jump table of the attention kernels for rows
// of t keys and blocks of block threads: thread tid starts at draw
// tid·chunk, which is chunk·tid + 1 steps into the row's stream.
func (g *gpu) attnJump(t, block int) (uint64, error) {
	chunk := (t + block - 1) / block
	key := [2]int{chunk, block}
	if p, ok := g.attnJumps[key]; ok {
		return p, nil
	}
	p, err := g.uploadTable(jumpTable(block, 1, uint64(chunk)))
	if err != nil {
		return 0, err
	}
	g.attnJumps[key] = p
	return p, nil
}

// uploadTable copies a table of uint64 to a new device allocation.
func (g *gpu) uploadTable(t []uint64) (uint64, error) {
	p, err := g.alloc(uint64(8 * len(t)))
	if err != nil {
		return 0, err
	}
	return p, g.upload(p, unsafe.Slice((*byte)(unsafe.Pointer(&t[0])), 8*len(t)))
}

func gib(b uint64) float64 { return float64(b) / (1 << 30) }
