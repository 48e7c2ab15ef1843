package tui

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/fridaymorning/fridaymorning/release"
)

// Every tea.Cmd of the cockpit: the work that may block (a probe, a tasks poll, a request to the
// release) runs here, off the UI's goroutine, and answers with a message.

// requestTimeout bounds the delivery of one command to the release; pollTimeout bounds one probe and one
// tasks poll.
const (
	requestTimeout = 10 * time.Second
	pollTimeout    = 3 * time.Second
)

// tick beats the clock once a second.
func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// after sends msg once d has passed: the next round of probes or polls.
func after(d time.Duration, msg tea.Msg) tea.Cmd {
	return tea.Tick(d, func(time.Time) tea.Msg { return msg })
}

// immediately sends msg at once: the first round of probes or polls.
func immediately(msg tea.Msg) tea.Cmd {
	return func() tea.Msg { return msg }
}

// probe checks one dependency and answers with a probeMsg of generation gen.
func probe(p Probe, gen uint64) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
		defer cancel()
		start := time.Now()
		err := p.Run(ctx)
		return probeMsg{name: p.Name, gen: gen, took: time.Since(start), err: err}
	}
}

// pollTasks asks for the task states and answers with a tasksMsg of generation gen.
func pollTasks(tasks Tasks, gen uint64) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
		defer cancel()
		c, s, err := tasks(ctx)
		return tasksMsg{gen: gen, canary: c, stable: s, err: err}
	}
}

// send asks ctl to carry out cmd and answers with a sentMsg.
func send(ctl Controller, cmd release.Command) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		return sentMsg{cmd: cmd, err: ctl.Request(ctx, cmd)}
	}
}
