package main

import (
	"syscall"
	"testing"
)

func TestStopSignalFromSpec(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want syscall.Signal
	}{
		{``, syscall.SIGTERM},
		{`{}`, syscall.SIGTERM},
		{`{"annotations":{"other":"x"}}`, syscall.SIGTERM},
		{`{"annotations":{"org.opencontainers.image.stopSignal":"SIGQUIT"}}`, syscall.SIGQUIT},
		{`{"annotations":{"org.opencontainers.image.stopSignal":"2"}}`, syscall.SIGINT},
		{`{"annotations":{"org.opencontainers.image.stopSignal":"usr1"}}`, syscall.SIGUSR1},
	} {
		got, err := stopSignal([]byte(tc.spec))
		if err != nil || got != tc.want {
			t.Errorf("stopSignal(%s) = %v, %v; want %v", tc.spec, got, err, tc.want)
		}
	}
	for _, bad := range []string{`{"annotations":{"org.opencontainers.image.stopSignal":"SIGNOPE"}}`, `{`} {
		if _, err := stopSignal([]byte(bad)); err == nil {
			t.Errorf("stopSignal(%s) succeeded", bad)
		}
	}
}
