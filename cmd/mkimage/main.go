package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// errUsage marks command-line mistakes, which exit with status 2 like the
// flag package's own.
var errUsage = errors.New("usage: mkimage [flags] -o OUT PACKAGE | mkimage [-entry SYMBOL] -o OUT IN.elf")

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run is the whole command, separated from main so tests can call it.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the image to `path` (required; may equal IN)")
	entry := fs.String("entry", "", "ELF mode: take the entry from `symbol` instead of e_entry")
	o := buildOptions{stderr: stderr}
	fs.Func("files", "build mode: pack the file or directory `SRC[=/DEST]` into the image at DEST (default /BASE, BASE the last element of SRC); repeatable", func(s string) error {
		p, err := parsePackSpec(s)
		if err == nil {
			o.files = append(o.files, p)
		}
		return err
	})
	fs.BoolVar(&o.roots, "roots", true, "build mode: serve the Mozilla CA roots at "+rootsPath)
	fs.StringVar(&o.govirtio, "govirtio", "", "build mode: the govirtio checkout to link (`dir`; default: the one the program's module requires, else the current directory's module)")
	fs.StringVar(&o.elfOut, "elf", "", "build mode: also write the ELF executable (before the PVH note) to `path`, for symbols and pprof")
	fs.StringVar(&o.tags, "tags", "", "build mode: go build -tags `list`")
	fs.StringVar(&o.ldflags, "ldflags", "", "build mode: more go build -ldflags `flags` (after -E _rt0_pvh)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%v\n\nBuild mode (PACKAGE is a main package: a directory or an import path) builds\nit, unmodified, into an image that qemu-system-x86_64 -kernel boots, with the\nruntime linked in and files packed. ELF mode (IN is an ELF file) adds the PVH\nentry note to a static GOARCH=amd64 executable linked with -E _rt0_pvh.\n\n", errUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *out == "" || fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%w: need -o OUT and exactly one IN (a main package or an ELF file)", errUsage)
	}
	in := fs.Arg(0)
	var data []byte
	var built string
	elfMode, err := isELF(in)
	if err != nil {
		return err
	}
	if elfMode {
		if o.files != nil || o.elfOut != "" || o.tags != "" || o.ldflags != "" || o.govirtio != "" {
			return fmt.Errorf("%w: -files, -elf, -tags, -ldflags and -govirtio are for build mode, and %s is an ELF file", errUsage, in)
		}
		if data, err = os.ReadFile(in); err != nil {
			return fmt.Errorf("reading input: %w", err)
		}
	} else {
		if *entry != "" {
			return fmt.Errorf("%w: -entry is for ELF mode; build mode enters at _rt0_pvh", errUsage)
		}
		if data, built, err = buildImage(in, o); err != nil {
			return err
		}
	}
	im, err := addPVHNote(data, *entry)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := writeFileAtomic(*out, im.data); err != nil {
		return err
	}
	if built != "" {
		fmt.Fprintln(stdout, built)
	}
	fmt.Fprintln(stdout, im.summary(*out))
	return nil
}

// isELF reports ELF mode: path names a file (which addPVHNote checks is
// an ELF executable). A directory or an import path is build mode; a
// missing file that is spelled as a path (absolute, or starting with .)
// is an error.
func isELF(path string) (bool, error) {
	info, err := os.Stat(path)
	switch {
	case err == nil:
		return !info.IsDir(), nil
	case filepath.IsAbs(path) || strings.HasPrefix(path, "."):
		return false, fmt.Errorf("reading input: %w", err)
	}
	return false, nil
}

// writeFileAtomic writes data to a temporary file beside path and renames it
// into place, so a failed run never leaves a half-written image and OUT may be
// the same file as IN.
func writeFileAtomic(path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mkimage-*")
	if err != nil {
		return fmt.Errorf("creating output: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}
