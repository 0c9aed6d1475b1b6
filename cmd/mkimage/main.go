package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// errUsage marks command-line mistakes, which exit with status 2 like the
// flag package's own.
var errUsage = errors.New("usage: mkimage [-entry SYMBOL] -o OUT IN")

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
	entry := fs.String("entry", "", "take the entry from `symbol` instead of e_entry")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%v\n\nAdds a PVH entry note to a static GOARCH=amd64 ELF executable so that\nqemu-system-x86_64 -kernel boots it.\n\n", errUsage)
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
		return fmt.Errorf("%w: need -o OUT and exactly one IN", errUsage)
	}
	in := fs.Arg(0)
	data, err := os.ReadFile(in)
	if err != nil {
		return fmt.Errorf("reading input: %w", err)
	}
	im, err := addPVHNote(data, *entry)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := writeFileAtomic(*out, im.data); err != nil {
		return err
	}
	fmt.Fprintln(stdout, im.summary(*out))
	return nil
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
