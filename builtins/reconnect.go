package builtins

import (
	"context"
	"fmt"
	"time"

	"go.starlark.net/starlark"
)

var reconnectSpec = &Spec{
	Name: "reconnect",
	Doc: "Closes the connection to the host and opens a new one, waiting for the host to come " +
		"back: after a reboot, or a restart of its SSH server. It waits `delay` seconds, then tries " +
		"every `interval` seconds until the control argument `timeout` (default 300 seconds) runs out. " +
		"Cached facts are dropped. Under `--dry` it does nothing.",
	Params: []Param{
		{"delay?", "int or float", "10", "Seconds to wait before the first try (the host going down)."},
		{"interval?", "int or float", "2", "Seconds between tries."},
	},
	Control: true,
	Returns: "an unchanged result",
	Example: `shell("nohup sh -c 'sleep 1; reboot' >/dev/null 2>&1 &", name = "reboot")
reconnect(delay = 5, timeout = 600)`,
	Effects: EffectReadHost,
	Fn:      reconnectFn,
}

func reconnectFn(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	h, ctl, name, kw, err := begin(thread, s, kw)
	if err != nil {
		return nil, err
	}
	delayV, intervalV := starlark.Value(starlark.MakeInt(10)), starlark.Value(starlark.MakeInt(2))
	if err := s.Unpack(args, kw, &delayV, &intervalV); err != nil {
		return nil, err
	}
	var d [2]time.Duration
	for i, v := range []starlark.Value{delayV, intervalV} {
		if d[i], err = asSeconds(v); err != nil {
			return nil, fmt.Errorf("reconnect: %s: %w", s.Params[i].Name[:len(s.Params[i].Name)-1], err)
		}
	}
	delay, interval := d[0], max(d[1], 10*time.Millisecond)
	if name == "" {
		name = "reconnect"
	}
	ctl.Retries = 0
	if ctl.Timeout == 0 {
		ctl.Timeout = 300 * time.Second
	}
	timeout := ctl.Timeout
	return h.operation(thread, s.Name, name, ctl, func(ctx context.Context) (outcome, error) {
		if h.Dry {
			return outcome{status: StatusOK, message: "would reconnect"}, nil
		}
		if h.Reopen == nil {
			return outcome{}, fmt.Errorf("reconnect: this host cannot be reopened here")
		}
		h.Conn.Close()
		h.ForgetFacts()
		wait := delay
		last := fmt.Errorf("no try yet")
		for {
			select {
			case <-ctx.Done():
				// The closed connection stays: later operations fail on it.
				return outcome{}, fmt.Errorf("reconnect: %s did not come back within %s (last try: %v)", h.Name, timeout, last)
			case <-time.After(wait):
			}
			conn, err := h.Reopen(ctx)
			if err == nil {
				h.Conn = conn
				return outcome{status: StatusOK, message: "reconnected"}, nil
			}
			last, wait = err, interval
		}
	})
}
