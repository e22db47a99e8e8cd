module github.com/galevm/gale

go 1.26.8

require (
	github.com/diskfs/go-diskfs v1.9.4
	github.com/sirupsen/logrus v1.9.4
	gopkg.in/yaml.v3 v3.0.1
	libvirt.org/go/libvirt v1.11006.0
	libvirt.org/go/libvirtxml v1.12008.0
)

require (
	github.com/djherbis/times v1.6.0 // indirect
	golang.org/x/sys v0.43.0 // indirect
)
