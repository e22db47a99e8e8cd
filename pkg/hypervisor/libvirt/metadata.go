package libvirt

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/galevm/gale/pkg/hypervisor"
)

// metadataElement is the local name of gale's element inside <metadata>.
const metadataElement = "vm"

// metadataXML is the wire form of hypervisor.Metadata: a root element in
// hypervisor.MetadataNamespace, e.g.
//
//	<vm xmlns="https://gale.dev/xmlns/domain/1"><id>..</id><created>..</created></vm>
type metadataXML struct {
	XMLName xml.Name
	ID      string `xml:"id,omitempty"`
	Image   string `xml:"image,omitempty"`
	Set     string `xml:"set,omitempty"`
	Parent  string `xml:"parent,omitempty"`
	Created string `xml:"created,omitempty"`
}

// marshalMetadata renders m as gale's namespaced metadata element.
func marshalMetadata(m hypervisor.Metadata) (string, error) {
	w := metadataXML{
		XMLName: xml.Name{Space: hypervisor.MetadataNamespace, Local: metadataElement},
		ID:      m.ID, Image: m.Image, Set: m.Set, Parent: m.Parent,
	}
	if !m.CreatedAt.IsZero() {
		w.Created = m.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	b, err := xml.Marshal(w)
	if err != nil {
		return "", fmt.Errorf("marshal gale metadata: %w", err)
	}
	return string(b), nil
}

// parseMetadata finds gale's element in the inner XML of a domain's
// <metadata> and decodes it. It returns nil, nil when the element is absent
// (the domain is not gale's), whatever other applications stored there.
func parseMetadata(inner string) (*hypervisor.Metadata, error) {
	if strings.TrimSpace(inner) == "" {
		return nil, nil
	}
	dec := xml.NewDecoder(strings.NewReader(inner))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parse domain metadata: %w", err)
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if start.Name.Space != hypervisor.MetadataNamespace || start.Name.Local != metadataElement {
			if err := dec.Skip(); err != nil {
				return nil, fmt.Errorf("parse domain metadata: %w", err)
			}
			continue
		}
		var w metadataXML
		if err := dec.DecodeElement(&w, &start); err != nil {
			return nil, fmt.Errorf("parse gale metadata: %w", err)
		}
		m := &hypervisor.Metadata{ID: w.ID, Image: w.Image, Set: w.Set, Parent: w.Parent}
		if w.Created != "" {
			t, err := time.Parse(time.RFC3339Nano, w.Created)
			if err != nil {
				return nil, fmt.Errorf("parse gale metadata created %q: %w", w.Created, err)
			}
			m.CreatedAt = t
		}
		return m, nil
	}
}
