package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrUnknownTemplate: no catalog directory has a template of that name.
var ErrUnknownTemplate = errors.New("unknown image template")

// Catalog is the set of template files in a list of directories. A file in
// a later directory replaces one of the same name in an earlier directory,
// the way /etc overrides /usr/share: gale ships its templates in
// /usr/share/gale/images and users add or override theirs in
// /etc/gale/images. Only files named NAME.yaml are read, and the template's
// name field must equal NAME.
type Catalog struct {
	Dirs []string
}

// Entry is one catalog file: its template, or the error that kept it from
// loading (a *ValidationError names the file and the field).
type Entry struct {
	Name     string
	File     string
	Template *Template
	Err      error
}

// Entries loads every template, sorted by name. A directory that does not
// exist is skipped; an unreadable one is an error. A bad file is not an
// error here: its Entry carries the error, so one broken user file does not
// hide the rest of the catalog.
func (c Catalog) Entries() ([]Entry, error) {
	byName := map[string]string{}
	for _, dir := range c.Dirs {
		files, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read image catalog %s: %w", dir, err)
		}
		for _, f := range files {
			name, ok := strings.CutSuffix(f.Name(), ".yaml")
			if !ok || f.IsDir() || strings.HasPrefix(f.Name(), ".") {
				continue
			}
			byName[name] = filepath.Join(dir, f.Name())
		}
	}
	out := make([]Entry, 0, len(byName))
	for name, file := range byName {
		out = append(out, loadEntry(name, file))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Get returns the template called name from the directory that wins for
// it. A name no directory has wraps ErrUnknownTemplate; a bad file returns
// its validation error.
func (c Catalog) Get(name string) (*Template, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("%w: %q is not a template name", ErrUnknownTemplate, name)
	}
	for i := len(c.Dirs) - 1; i >= 0; i-- {
		file := filepath.Join(c.Dirs[i], name+".yaml")
		if _, err := os.Stat(file); err != nil {
			continue
		}
		e := loadEntry(name, file)
		return e.Template, e.Err
	}
	return nil, fmt.Errorf("%w %q (looked in %s)", ErrUnknownTemplate, name, strings.Join(c.Dirs, ", "))
}

func loadEntry(name, file string) Entry {
	e := Entry{Name: name, File: file}
	t, err := LoadTemplate(file)
	switch {
	case err != nil:
		e.Err = err
	case t.Name != name:
		e.Err = &ValidationError{File: file, Field: "name", Msg: fmt.Sprintf("%q must match the file name %q", t.Name, name+".yaml")}
	default:
		e.Template = t
	}
	return e
}

// ErrBadName: a string that cannot be an image name.
var ErrBadName = errors.New("invalid image name")

// ValidateName checks an image name: 1-63 characters of lower-case letters,
// digits, '.' and '-', starting with a letter or digit ("ubuntu-24.04").
// Such a name is safe as a file name: it has no '/', and is never "." or "..".
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: %q: use 1-63 lower-case letters, digits, '.' and '-', starting with a letter or digit", ErrBadName, name)
	}
	return nil
}
