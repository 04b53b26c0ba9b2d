// Command pprof_check reads profiles with google/pprof's own profile
// package, the parser behind `go tool pprof` and most pprof tooling
// (Debian's golang-github-google-pprof-dev, built offline in GOPATH mode
// by readers_check.sh), and checks each with profile.CheckValid.
//
// Usage: pprof_check FILE...
//
// For each file it prints one summary line, the same that
// pprof_format_check.js prints from its own decoder, so the test can see
// that two independent readers find the same profile:
//
//	FILE types=T/U,... default=T period=T/U:N samples=N sums=V,... locations=N functions=N mappings=N
//
// It exits 1 after any file that does not parse or is not valid, naming
// the file and the reason.  Besides CheckValid (every sample has one value
// per sample type, ids are nonzero and unique, every reference resolves),
// it checks what a reader relies on and the parser does not: the bytes
// are gzipped protobuf (Parse would also take the legacy text forms, which
// would hide a writer that fell back to text), at least one sample type,
// and a default sample type that is one of them.
package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/google/pprof/profile"
)

func check(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return "", fmt.Errorf("not gzip: a pprof profile is gzipped protobuf")
	}
	p, err := profile.Parse(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("profile.Parse: %v", err)
	}
	if err := p.CheckValid(); err != nil {
		return "", fmt.Errorf("CheckValid: %v", err)
	}
	if len(p.SampleType) == 0 {
		return "", fmt.Errorf("no sample type")
	}
	types := make([]string, len(p.SampleType))
	found := p.DefaultSampleType == ""
	for i, st := range p.SampleType {
		types[i] = st.Type + "/" + st.Unit
		found = found || st.Type == p.DefaultSampleType
	}
	if !found {
		return "", fmt.Errorf("default sample type %q is none of %s", p.DefaultSampleType,
			strings.Join(types, ","))
	}
	sums := make([]int64, len(p.SampleType))
	for _, s := range p.Sample {
		for i, v := range s.Value {
			sums[i] += v
		}
	}
	sumText := make([]string, len(sums))
	for i, v := range sums {
		sumText[i] = fmt.Sprint(v)
	}
	period := "none"
	if p.PeriodType != nil {
		period = p.PeriodType.Type + "/" + p.PeriodType.Unit
	}
	return fmt.Sprintf("types=%s default=%s period=%s:%d samples=%d sums=%s locations=%d "+
		"functions=%d mappings=%d", strings.Join(types, ","), p.DefaultSampleType, period,
		p.Period, len(p.Sample), strings.Join(sumText, ","), len(p.Location),
		len(p.Function), len(p.Mapping)), nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pprof_check FILE...")
		os.Exit(2)
	}
	failed := false
	for _, path := range os.Args[1:] {
		summary, err := check(path)
		if err != nil {
			fmt.Printf("%s: %v\n", path, err)
			failed = true
			continue
		}
		fmt.Printf("%s %s\n", path, summary)
	}
	if failed {
		os.Exit(1)
	}
}
