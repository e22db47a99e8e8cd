// Package cloudinit builds NoCloud seed ISOs for cloud-init.
//
// A seed is an ISO9660 image with Rock Ridge names and the volume label
// "cidata", holding three files:
//
//   - user-data: the user's bytes, passed through untouched. Only content
//     that claims to be "#cloud-config" is checked (it must be a YAML
//     mapping); scripts, MIME multipart, #include and the other cloud-init
//     formats are not interpreted.
//   - meta-data: instance-id, local-hostname and public-keys, generated
//     with a YAML encoder from validated values.
//   - network-config (optional): network config version 2, DHCPv4 on one
//     NIC matched by MAC address, generated with a YAML encoder.
//
// Nothing here is built from string templates: every value gale puts into
// a YAML file is validated first and then emitted as a double-quoted YAML
// string, which both YAML 1.2 (Go) and YAML 1.1 (cloud-init's PyYAML) read
// back as exactly the same string.
package cloudinit
