package operation

// Kind is what an operation does. The values are the api.Operation.Kind
// strings on the wire.
type Kind string

// Kinds of operations.
const (
	KindCreate    Kind = "create"    // a VM: make it and wait until it is ready
	KindDelete    Kind = "delete"    // a VM or an image
	KindStart     Kind = "start"     // a VM
	KindStop      Kind = "stop"      // a VM
	KindRestart   Kind = "restart"   // a VM
	KindReconcile Kind = "reconcile" // a VM: galed's own repair after a restart
	KindPull      Kind = "pull"      // an image: download it
	KindBuild     Kind = "build"     // an image: build it from a catalog recipe
	KindImport    Kind = "import"    // an image: import a disk image
)

// TargetType is the type of thing an operation works on.
type TargetType string

// Target types.
const (
	TypeVM    TargetType = "vm"
	TypeImage TargetType = "image"
	TypeSet   TargetType = "set"
)

// Target is what an operation holds: one thing, named within its type, and
// the parent it belongs to (e.g. the scale set of a member VM), if any.
// Callers name the parent: the registry knows only what it is told.
type Target struct {
	Type   TargetType
	Name   string
	Parent *Target
}

// VM is the target of an operation on VM name, without a parent.
func VM(name string) Target { return Target{Type: TypeVM, Name: name} }

// Image is the target of an operation on image name.
func Image(name string) Target { return Target{Type: TypeImage, Name: name} }

// Key identifies the target within the registry: "<type>/<name>". Two
// targets with the same key are the same lock, whatever their parents.
func (t Target) Key() string { return string(t.Type) + "/" + t.Name }

// String is the target as the API reports it (api.Operation.Target): a
// VM's bare name ("web"), "<type>/<name>" for the others ("image/debian-12").
func (t Target) String() string {
	if t.Type == TypeVM {
		return t.Name
	}
	return t.Key()
}

// ancestors returns the target's parent, its parent's parent, and so on.
func (t Target) ancestors() []Target {
	var out []Target
	for p := t.Parent; p != nil; p = p.Parent {
		out = append(out, *p)
	}
	return out
}
