package shim

import (
	"encoding/json"
	"time"
)

// ProtocolVersion is the version of the wire protocol this package speaks.
// It changes only when an older client could misread a newer shim.
const ProtocolVersion = 1

// Files the shim keeps in the task directory (the OCI bundle directory the
// daemon prepared). Paths are relative to that directory.
const (
	SocketFile  = "shim.sock" // the API socket, mode 0600
	PidFile     = "shim.pid"  // the shim's pid, decimal
	LogFile     = "shim.log"  // the shim's own diagnostics (its stderr)
	InitPidFile = "init.pid"  // the container's init pid, written by the runtime
	ExitFile    = "exit"      // the init's durable exit record, JSON Exit
)

// Methods of the protocol, the Method field of a Request.
const (
	MethodVersion    = "version"
	MethodState      = "state"
	MethodStart      = "start"
	MethodKill       = "kill"
	MethodPause      = "pause"
	MethodResume     = "resume"
	MethodWait       = "wait"
	MethodExec       = "exec"
	MethodResize     = "resize"
	MethodCloseStdin = "close-stdin"
	MethodAttach     = "attach"
	MethodUpdate     = "update"
	MethodDelete     = "delete"
	MethodReopenLog  = "reopen-log"
)

// Request is the one JSON line a client sends on a new connection. ID names
// an exec process; empty means the container's init process. Fields a method
// does not use are left out.
type Request struct {
	Method string `json:"method"`
	ID     string `json:"id,omitempty"`
	// Signal and All: kill.
	Signal int  `json:"signal,omitempty"`
	All    bool `json:"all,omitempty"`
	// Process and Stdin: exec. Process is an OCI runtime-spec Process.
	Process json.RawMessage `json:"process,omitempty"`
	Stdin   bool            `json:"stdin,omitempty"`
	// Width and Height: resize, in character cells.
	Width  uint16 `json:"width,omitempty"`
	Height uint16 `json:"height,omitempty"`
	// Resources: update. An OCI runtime-spec LinuxResources.
	Resources json.RawMessage `json:"resources,omitempty"`
}

// Response is the one JSON line the shim answers with. Error is set when the
// call failed; otherwise the field of the method's result is.
type Response struct {
	Error   *Error   `json:"error,omitempty"`
	Version *Version `json:"version,omitempty"`
	State   *State   `json:"state,omitempty"`
	Exit    *Exit    `json:"exit,omitempty"`
	Pid     int      `json:"pid,omitempty"`
}

// Version identifies a running shim.
type Version struct {
	Version  string `json:"version"`  // berth build version of the shim binary
	Protocol int    `json:"protocol"` // ProtocolVersion of the shim
	Pid      int    `json:"pid"`      // the shim's own pid
	Runtime  string `json:"runtime"`  // path of the OCI runtime binary it drives
}

// Status is the lifecycle status of a process.
type Status string

// The statuses. Init goes created → running ⇄ paused → stopped (created may
// go straight to stopped); an exec process goes created → running → stopped.
const (
	StatusCreated Status = "created"
	StatusRunning Status = "running"
	StatusPaused  Status = "paused"
	StatusStopped Status = "stopped"
)

// State describes the init or an exec process.
type State struct {
	ID       string `json:"id,omitempty"` // exec ID, empty for init
	Status   Status `json:"status"`
	Pid      int    `json:"pid,omitempty"` // 0 before an exec process starts
	Terminal bool   `json:"terminal,omitempty"`
	Stdin    bool   `json:"stdin,omitempty"`
	Exit     *Exit  `json:"exit,omitempty"` // set when Status is stopped
}

// Exit is how a process ended. For init it is also the content of the
// durable record DIR/exit.
type Exit struct {
	// Status is the exit code, or 128+n for a process killed by signal n.
	Status   int       `json:"status"`
	ExitedAt time.Time `json:"exited_at"`
	// Reason is ReasonOOMKilled when the container's memory cgroup recorded
	// an OOM kill during the process's life, otherwise empty.
	Reason string `json:"reason,omitempty"`
	Pid    int    `json:"pid"`
}

// ReasonOOMKilled is the Exit.Reason of a process that ended while its
// container's memory cgroup killed a process for lack of memory.
const ReasonOOMKilled = "OOMKilled"
