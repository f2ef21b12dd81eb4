// Package atomicfile writes the files a user names, and the records a
// program keeps, so that a reader sees the old content or the whole new
// one, what was written survives a power cut, and a path that is not a
// regular file (a device such as /dev/null, a FIFO, a terminal) is written
// to, never replaced.
//
// Every file the project keeps as a record (a session's session.json, a
// result.json, the artifacts a result names) goes through WriteFile, or
// through Rename when a streaming writer has written it whole under a
// temporary name: one way to write, temporary file, fsync, rename, fsync of
// the directory.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// maxLinks bounds how many symbolic links are followed, as the kernel's
// ELOOP does.
const maxLinks = 40

// WriteFile writes data to the file that path names, following symbolic
// links to their target. When the target is a regular file or does not
// exist yet, data goes to a temporary file in the target's directory that
// is fsynced, renamed over the target, and the directory fsynced: a reader
// sees the old content or all of the new, and once WriteFile returns nil
// the new content survives a crash. A new file gets mode perm; a replaced
// one keeps its mode. When the target is anything else (a device, a FIFO,
// a socket), data is written to it in place, as a shell's redirection
// does, and the target is never replaced. A directory is an error.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	target, err := resolve(path)
	if err != nil {
		return err
	}
	st, err := os.Stat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return replace(target, data, perm)
	case err != nil:
		return err
	case st.IsDir():
		return fmt.Errorf("%s is a directory: give a file name", path)
	case st.Mode().IsRegular():
		return replace(target, data, st.Mode().Perm())
	}
	return writeInPlace(target, data)
}

// resolve follows the symbolic links path is made of at its last element
// until it names a file that is not a link, or nothing. A dangling link
// resolves to the missing target, which WriteFile then creates, as
// "echo > link" does.
func resolve(path string) (string, error) {
	p := path
	for range maxLinks {
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
		if err != nil {
			return "", err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		link, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(p), link)
		}
		p = link
	}
	return "", fmt.Errorf("%s: more than %d symbolic links to follow", path, maxLinks)
}

// replace writes data to a temporary file beside target, fsyncs it,
// renames it over target and fsyncs the directory, so that the rename
// itself is on disk.
func replace(target string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(target)
	f, err := os.CreateTemp(dir, "."+filepath.Base(target)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	_, err = f.Write(data)
	if err == nil {
		// CreateTemp makes the file private (0600).
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, target); err != nil {
		return err
	}
	return SyncDir(dir)
}

// Rename moves tmp, a complete file that a streaming writer (a video
// encoder) has closed, to target in the same directory: it fsyncs tmp,
// renames it over target and fsyncs the directory, so that once Rename
// returns nil target holds all of tmp's content, after a crash too, and a
// reader never sees part of it. On failure tmp is removed.
func Rename(tmp, target string) (err error) {
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err := SyncFile(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, target); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(target))
}

// SyncFile fsyncs the file at path, which another writer has closed, so
// that its content is on disk.
func SyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// SyncDir fsyncs a directory, which makes the names created, renamed or
// removed in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// writeInPlace writes data to a file that is not a regular file, keeping
// it what it is.
func writeInPlace(target string, data []byte) error {
	f, err := os.OpenFile(target, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
