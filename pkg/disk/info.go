package disk

import (
	"context"
	"encoding/json"
	"fmt"
)

// Info describes an image as reported by qemu-img info.
type Info struct {
	// Format is the format the image was opened as (always the one asked for).
	Format string
	// VirtualSize is the size the guest sees, in bytes.
	VirtualSize int64
	// ActualSize is the space the file takes on the host, in bytes.
	ActualSize int64
	// BackingFilename is the backing file as recorded in the image ("" if none).
	BackingFilename string
	// BackingFormat is the recorded format of the backing file ("" if none
	// or not recorded; an image without one must not be used as an overlay).
	BackingFormat string
	// DataFile is the external data file of a qcow2 image ("" if none).
	DataFile string
	// HasDataFile reports whether the image has an external data file. Such
	// an image reads guest data from another host file; treat it as untrusted.
	HasDataFile bool
}

// infoJSON is the subset of `qemu-img info --output=json` that Info reads.
type infoJSON struct {
	Format          string `json:"format"`
	VirtualSize     *int64 `json:"virtual-size"`
	ActualSize      int64  `json:"actual-size"`
	BackingFilename string `json:"backing-filename"`
	BackingFormat   string `json:"backing-filename-format"`
	FormatSpecific  struct {
		Data struct {
			DataFile *string `json:"data-file"`
		} `json:"data"`
	} `json:"format-specific"`
}

// Info inspects the image at path, opened as format:
//
//	qemu-img info --output=json -U -f <format> <abs path>
//
// format is required and is never probed. -U (force-share) lets it inspect
// images that a running guest holds open; the values may then be slightly
// stale. Info does not open the backing chain.
func (q *QemuImg) Info(ctx context.Context, path, format string) (Info, error) {
	if err := checkFormat(format); err != nil {
		return Info{}, fmt.Errorf("image info %s: %w", path, err)
	}
	abs, err := absPath(path)
	if err != nil {
		return Info{}, fmt.Errorf("image info: %w", err)
	}
	out, err := q.run(ctx, "info", "--output=json", "-U", "-f", format, abs)
	if err != nil {
		return Info{}, fmt.Errorf("image info %s: %w", path, err)
	}
	info, err := parseInfo(out)
	if err != nil {
		return Info{}, fmt.Errorf("image info %s: %w", path, err)
	}
	if info.Format != format {
		return Info{}, fmt.Errorf("image info %s: qemu-img reported format %q, asked for %q", path, info.Format, format)
	}
	return info, nil
}

func parseInfo(out []byte) (Info, error) {
	var j infoJSON
	if err := json.Unmarshal(out, &j); err != nil {
		return Info{}, fmt.Errorf("parse qemu-img info output: %w", err)
	}
	if j.VirtualSize == nil {
		return Info{}, fmt.Errorf("parse qemu-img info output: no virtual-size")
	}
	info := Info{
		Format:          j.Format,
		VirtualSize:     *j.VirtualSize,
		ActualSize:      j.ActualSize,
		BackingFilename: j.BackingFilename,
		BackingFormat:   j.BackingFormat,
	}
	if df := j.FormatSpecific.Data.DataFile; df != nil {
		info.HasDataFile = true
		info.DataFile = *df
	}
	return info, nil
}
