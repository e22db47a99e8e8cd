package imagestore

import (
	"os"
	"path/filepath"
	"strings"
)

// DefaultDir is the image directory when none is configured.
const DefaultDir = "/var/lib/gale/images"

// buildDirPrefix starts the name of every build work directory.
const buildDirPrefix = ".build-"

// TemplatePath is where the image of a catalog template lives, built or
// pulled: "<name>-<first 12 digits of recipeHash>.qcow2" in Dir. recipeHash
// is the template's hex recipe hash (image.Template.RecipeHash) and must
// have at least 12 digits. The name changes whenever the recipe does, so a
// changed recipe never finds the image of an older one.
func (s Store) TemplatePath(name, recipeHash string) string {
	return filepath.Join(s.Dir, name+"-"+recipeHash[:12]+".qcow2")
}

// DownloadPath is where the download of the image that ends up at
// imagePath is kept until it is complete and verified.
func (s Store) DownloadPath(imagePath string) string {
	return filepath.Join(s.DownloadsDir(), filepath.Base(imagePath)+".download")
}

// BuildLockPath is the lock file that builds of the template called name
// hold (flock) while they run: a work directory of name whose lock can be
// taken belongs to no running build.
func (s Store) BuildLockPath(name string) string {
	return filepath.Join(s.Dir, "."+name+".lock")
}

// MakeBuildDir creates a fresh work directory for a build of the template
// called name, ".build-<name>-<random>" in Dir (which must exist), with
// mode 0700. The caller removes it when done. The error is os.MkdirTemp's,
// unwrapped: it names the path.
func (s Store) MakeBuildDir(name string) (string, error) {
	return os.MkdirTemp(s.Dir, buildDirPrefix+name+"-")
}

// BuildDir is a build work directory found in the store.
type BuildDir struct {
	Path string
	Name string // the template being built
}

// BuildDirs returns the build work directories in Dir, running or left by
// killed builds. Entries whose name has no template name are skipped.
func (s Store) BuildDirs() ([]BuildDir, error) {
	dirs, err := filepath.Glob(filepath.Join(s.Dir, buildDirPrefix+"*"))
	if err != nil {
		return nil, err
	}
	var out []BuildDir
	for _, d := range dirs {
		base := strings.TrimPrefix(filepath.Base(d), buildDirPrefix)
		i := strings.LastIndexByte(base, '-')
		if i <= 0 {
			continue
		}
		out = append(out, BuildDir{Path: d, Name: base[:i]})
	}
	return out, nil
}
