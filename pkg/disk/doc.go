// Package disk creates and inspects disk images with qemu-img.
//
// Every qemu-img invocation names the image format explicitly (-f, and -F
// for a backing file). The format of a file a guest could have written is
// never probed: a raw image whose first bytes look like a qcow2 header would
// otherwise be opened as qcow2 and could point qemu at arbitrary host files.
//
// qemu-img is reached through the Runner interface so unit tests can fake
// it; ExecRunner is the real implementation.
package disk
