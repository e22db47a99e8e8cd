// Package inspect vets a foreign disk image before gale imports it.
//
// The images come from outside: a dd of a physical server, a VMDK exported
// from VMware, a VHD or VHDX from Hyper-V, a VDI from VirtualBox. galed runs
// as root, so a hostile image must not be able to
//
//   - make qemu read host files: a qcow2 backing file or external data file,
//     a VMDK descriptor whose extents name other files, a VMDK parent hint,
//     or a VHD/VHDX/VDI differencing disk that points at a parent;
//   - exhaust memory or CPU while it is examined: qemu-img info runs under
//     prlimit (address space and CPU time) and a wall-clock timeout, the
//     way OpenStack runs it;
//   - fill the host's disk: its virtual size is capped;
//   - pass for another format: the caller declares the format and it is
//     never guessed. A raw image whose first bytes are a qcow2 header stays
//     raw, and that header is never interpreted.
//
// Inspect checks each format's headers in pure Go before qemu-img ever
// opens the file, then runs qemu-img info under limits and cross-checks
// what qemu reports. Sniff only names the format a file looks like; it is
// for messages and warnings, never for choosing how to open an image.
//
// Inspect's verdict is about the file as it was while it was inspected. The
// caller must keep the file where no one else can modify it (for example in
// a directory only galed can write) until it has been converted.
package inspect
