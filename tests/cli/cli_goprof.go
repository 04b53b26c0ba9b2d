// Command cli_goprof writes pprof profiles with the Go runtime's own writer,
// so the mprof CLI tests can check `mprof top` against `go tool pprof` on
// files neither tool produced.  Standard library only.
//
// Usage: cli_goprof OUTDIR   (writes heap.pb.gz, allocs.pb.gz, cpu.pb.gz)
//
// The allocation and CPU shapes are varied on purpose: a few large and many
// small allocations, a function the compiler inlines (an "(inline)" row),
// recursion (one function several times in a stack), and several CPU
// burners with different weights and labels (pprof.Do).
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"
)

var keep [][]byte

//go:noinline
func allocateSmall(n int) {
	for i := 0; i < n; i++ {
		keep = append(keep, make([]byte, 96))
	}
}

//go:noinline
func allocateLarge(n int) {
	for i := 0; i < n; i++ {
		keep = append(keep, make([]byte, 256<<10))
	}
}

// Small enough for the compiler to inline into its caller.
func allocateInlined() []byte { return make([]byte, 4096) }

//go:noinline
func callsInlined(n int) {
	for i := 0; i < n; i++ {
		keep = append(keep, allocateInlined())
	}
}

//go:noinline
func recurse(depth int) {
	if depth == 0 {
		keep = append(keep, make([]byte, 8192))
		return
	}
	keep = append(keep, make([]byte, 512))
	recurse(depth - 1)
}

//go:noinline
func temporary(n int) int {
	total := 0
	for i := 0; i < n; i++ {
		b := make([]byte, 1024)
		total += len(b)
	}
	return total
}

var sink float64

//go:noinline
func burnHeavy(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := 0; i < 10000; i++ {
			sink += float64(i) * 1.0001
		}
	}
}

//go:noinline
func burnLight(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := 0; i < 10000; i++ {
			sink -= float64(i) * 0.9999
		}
	}
}

func write(dir, name string, fn func(*os.File) error) {
	f, err := os.Create(filepath.Join(dir, name))
	if err == nil {
		err = fn(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cli_goprof:", err)
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: cli_goprof OUTDIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	// Every allocation, so the test does not depend on sampling luck.
	runtime.MemProfileRate = 1

	allocateSmall(2000)
	allocateLarge(8)
	callsInlined(50)
	recurse(20)
	sink += float64(temporary(300))
	runtime.GC()

	write(dir, "heap.pb.gz", func(f *os.File) error { return pprof.Lookup("heap").WriteTo(f, 0) })
	write(dir, "allocs.pb.gz", func(f *os.File) error { return pprof.Lookup("allocs").WriteTo(f, 0) })

	write(dir, "cpu.pb.gz", func(f *os.File) error {
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		// Labeled as Go labels CPU samples, for mprof top --tag and --tags.
		pprof.Do(context.Background(), pprof.Labels("request", "upload"), func(context.Context) {
			burnHeavy(300 * time.Millisecond)
		})
		pprof.Do(context.Background(), pprof.Labels("request", "download", "tenant", "acme"),
			func(context.Context) { burnLight(100 * time.Millisecond) })
		pprof.StopCPUProfile()
		return nil
	})
	runtime.KeepAlive(keep)
}
