package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth/client"
)

// Connect to berthd and ask what it is.
func Example() {
	ctx := context.Background()
	c, err := client.New(ctx, socket) // client.DefaultAddress in real use
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	info, err := c.Server(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("root is set:", info.Root != "")
	fmt.Println("serves content:", strings.Contains(strings.Join(info.Services, " "), "berth.services.content.v1.Content"))
	// Output:
	// root is set: true
	// serves content: true
}

// Store a blob, read part of it back, and remove it.
func ExampleClient_Ingest() {
	ctx := context.Background()
	c, err := client.New(ctx, socket, client.WithNamespace("example-ingest"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	dgst, err := c.Ingest(ctx, strings.NewReader("hello, berth"), client.IngestOpts{
		Ref:    "greeting",
		Labels: map[string]string{"berth.io/gc.root": "example"}, // keep it until deleted
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(dgst)
	var buf bytes.Buffer
	if _, err := c.ReadBlob(ctx, dgst, 7, 5, &buf); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(buf.String())
	if err := c.DeleteBlob(ctx, dgst); err != nil {
		fmt.Println(err)
		return
	}
	_, err = c.BlobInfo(ctx, dgst)
	fmt.Println("after delete, not found:", errors.Is(err, client.ErrNotFound))
	// Output:
	// sha256:29313fea03d592249204d4598a6d7a0edeb807976712e55ee48c79f5cd4f8a11
	// berth
	// after delete, not found: true
}

// A lease keeps what is written under it until the lease goes.
func ExampleClient_CreateLease() {
	ctx := context.Background()
	c, err := client.New(ctx, socket, client.WithNamespace("example-lease"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	lease, err := c.CreateLease(ctx, "download", time.Hour, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	dgst, err := c.Ingest(client.WithLease(ctx, lease.ID), strings.NewReader("layer bytes"), client.IngestOpts{Ref: "layer"})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := c.GarbageCollect(ctx); err != nil {
		fmt.Println(err)
		return
	}
	_, err = c.BlobInfo(ctx, dgst)
	fmt.Println("kept while leased:", err == nil)
	if err := c.DeleteLease(ctx, lease.ID, true); err != nil {
		fmt.Println(err)
		return
	}
	_, err = c.BlobInfo(ctx, dgst)
	fmt.Println("collected with the lease:", errors.Is(err, client.ErrNotFound))
	// Output:
	// kept while leased: true
	// collected with the lease: true
}

// Watch what changes in a namespace.
func ExampleClient_Subscribe() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := client.New(ctx, socket, client.WithNamespace("example-events"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	events, _ := c.Subscribe(ctx, "namespace==example-events,topic==/leases/create")
	// The subscription starts asynchronously: create leases until one is seen.
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			c.CreateLease(ctx, fmt.Sprint("watched-", i), 0, nil)
			time.Sleep(50 * time.Millisecond)
		}
	}()
	ev := <-events
	fmt.Println(ev.Topic, ev.Type)
	// Output:
	// /leases/create berth.services.events.v1.LeaseCreate
}

// Ask what uses disk space in a namespace (berth df).
func ExampleClient_DiskUsage() {
	ctx := context.Background()
	c, err := client.New(ctx, socket, client.WithNamespace("example-df"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	// A blob labelled as a GC root: kept, but used by no image.
	if _, err := c.Ingest(ctx, strings.NewReader("kept by a label"), client.IngestOpts{
		Ref: "pinned", Labels: map[string]string{client.LabelGCRoot: "example"},
	}); err != nil {
		fmt.Println(err)
		return
	}
	du, err := c.DiskUsage(ctx, "") // "": the daemon's snapshotter
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("content: %d blob, %d bytes, %d held, %d reclaimable\n",
		du.Content.Total.Count, du.Content.Total.Bytes, du.Content.Held.Bytes, du.Content.Reclaimable.Bytes)
	fmt.Printf("images: %d, snapshots: %d\n", du.Images.Total.Count, du.Snapshots.Total.Count)
	// Output:
	// content: 1 blob, 15 bytes, 15 held, 0 reclaimable
	// images: 0, snapshots: 0
}
