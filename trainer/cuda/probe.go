package cuda

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Report is what Probe found on the machine.
type Report struct {
	Dirs []string // the folders searched, in order

	DriverPath    string // libcuda.so.1 as loaded, or ""
	DriverVersion string // the driver's CUDA version, e.g. "13.0"
	DriverErr     error  // why there is no usable driver (wraps ErrNoDriver or ErrNoDevice)
	Devices       []Device

	CublasPath, CublasVersion string
	CublasErr                 error
	NVRTCPath, NVRTCVersion   string
	NVRTCErr                  error
}

// Device describes one GPU.
type Device struct {
	Name        string
	Arch        string // e.g. "sm_90"
	SMs         int
	MemoryBytes uint64
}

// Probe looks for the CUDA driver, the devices, cuBLAS and NVRTC without
// creating a context or compiling anything (New does both). o.LibDir is
// searched first, and libraries no newer than the driver are preferred, as
// by New.
func Probe(o Options) Report {
	var r Report
	r.Dirs = libDirs(o.LibDir)
	nx := explicitDirs(o.LibDir)
	major := 0
	if drv, err := loadDriver(r.Dirs, nx); err != nil {
		r.DriverErr = err
	} else {
		r.DriverPath = drv.lib.path
		r.DriverVersion, r.Devices, r.DriverErr = probeDevices(drv)
		if m, _, ok := strings.Cut(r.DriverVersion, "."); ok {
			major, _ = strconv.Atoi(m)
		}
	}
	if b, err := loadCublas(r.Dirs, nx, major); err != nil {
		r.CublasErr = err
	} else {
		r.CublasPath, r.CublasVersion = b.lib.path, b.version()
	}
	if n, err := loadNVRTC(r.Dirs, nx, major); err != nil {
		r.NVRTCErr = err
	} else {
		r.NVRTCPath, r.NVRTCVersion = n.lib.path, n.versionString()
	}
	return r
}

func probeDevices(drv *driver) (version string, devs []Device, err error) {
	if r := drv.init(0); r != cudaSuccess {
		return "", nil, fmt.Errorf("%w: %v", ErrNoDevice, drv.check(r, "cuInit"))
	}
	var v, n int32
	if err := drv.check(drv.driverGetVersion(&v), "cuDriverGetVersion"); err != nil {
		return "", nil, err
	}
	version = fmt.Sprintf("%d.%d", v/1000, v%1000/10)
	if err := drv.check(drv.deviceGetCount(&n), "cuDeviceGetCount"); err != nil {
		return version, nil, err
	}
	for i := range n {
		var dev, major, minor, sms int32
		var name [256]byte
		var mem uint64
		if err := drv.check(drv.deviceGet(&dev, i), "cuDeviceGet(%d)", i); err != nil {
			return version, devs, err
		}
		drv.deviceGetName(&name[0], int32(len(name)), dev)
		drv.deviceGetAttr(&major, attrCCMajor, dev)
		drv.deviceGetAttr(&minor, attrCCMinor, dev)
		drv.deviceGetAttr(&sms, attrMultiprocessors, dev)
		drv.deviceTotalMem(&mem, dev)
		devs = append(devs, Device{Name: cString(&name[0]), Arch: fmt.Sprintf("sm_%d%d", major, minor), SMs: int(sms), MemoryBytes: mem})
	}
	if len(devs) == 0 {
		return version, nil, fmt.Errorf("%w: the driver sees no device", ErrNoDevice)
	}
	return version, devs, nil
}

// Write prints the report, one finding per line, each line after the
// first indented by indent.
func (r Report) Write(w io.Writer, indent string) {
	if r.DriverErr != nil && r.DriverPath == "" {
		fmt.Fprintf(w, "%v\n", r.DriverErr)
	} else {
		fmt.Fprintf(w, "driver %s (CUDA %s)\n", r.DriverPath, r.DriverVersion)
		if r.DriverErr != nil {
			fmt.Fprintf(w, "%s%v\n", indent, r.DriverErr)
		}
		for i, d := range r.Devices {
			fmt.Fprintf(w, "%sdevice %d: %s, %s, %d SMs, %.1f GiB\n", indent, i, d.Name, d.Arch, d.SMs, gib(d.MemoryBytes))
		}
	}
	if r.CublasErr != nil {
		fmt.Fprintf(w, "%s%v\n", indent, r.CublasErr)
	} else {
		fmt.Fprintf(w, "%scuBLAS %s (%s)\n", indent, r.CublasVersion, r.CublasPath)
	}
	if r.NVRTCErr != nil {
		fmt.Fprintf(w, "%s%v\n", indent, r.NVRTCErr)
	} else {
		fmt.Fprintf(w, "%sNVRTC %s (%s)\n", indent, r.NVRTCVersion, r.NVRTCPath)
	}
}
