package metadata

import (
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func testContainer(id, name string) Container {
	return Container{ID: id, Name: name, Image: "img", Snapshotter: "native", SnapshotKey: id, Spec: []byte("{}"), Runtime: "runc"}
}

func TestContainerNamesAreUniquePerNamespace(t *testing.T) {
	db := newDB(t, Options{})
	ctx := nsCtx("ns1")
	if _, err := db.CreateContainer(ctx, testContainer("abc123", "web")); err != nil {
		t.Fatal(err)
	}
	_, err := db.CreateContainer(ctx, testContainer("def456", "web"))
	wantKind(t, "same name", err, errdefs.ErrAlreadyExists)
	_, err = db.CreateContainer(ctx, testContainer("abc123", "other"))
	wantKind(t, "same id", err, errdefs.ErrAlreadyExists)
	if _, err := db.CreateContainer(nsCtx("ns2"), testContainer("def456", "web")); err != nil {
		t.Fatalf("same name in another namespace: %v", err)
	}
	if err := db.DeleteContainer(ctx, "abc123"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateContainer(ctx, testContainer("def456", "web")); err != nil {
		t.Fatalf("name freed by delete: %v", err)
	}
}

func TestGetContainerByIDNameOrPrefix(t *testing.T) {
	db := newDB(t, Options{})
	ctx := nsCtx("ns1")
	for _, c := range []Container{testContainer("abc123", "web"), testContainer("abd999", "db")} {
		if _, err := db.CreateContainer(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for ref, want := range map[string]string{"abc123": "abc123", "web": "abc123", "abd": "abd999", "db": "abd999"} {
		c, err := db.GetContainer(ctx, ref)
		if err != nil || c.ID != want {
			t.Errorf("GetContainer(%q) = %q, %v; want %q", ref, c.ID, err, want)
		}
	}
	_, err := db.GetContainer(ctx, "ab")
	wantKind(t, "ambiguous prefix", err, errdefs.ErrInvalidArgument)
	_, err = db.GetContainer(ctx, "zzz")
	wantKind(t, "unknown", err, errdefs.ErrNotFound)
}

func TestUpdateContainerKeepsIdentity(t *testing.T) {
	db := newDB(t, Options{})
	ctx := nsCtx("ns1")
	if _, err := db.CreateContainer(ctx, testContainer("abc123", "web")); err != nil {
		t.Fatal(err)
	}
	c, err := db.UpdateContainer(ctx, "abc123", func(c *Container) error {
		c.ExitStatus, c.ExitReason, c.RestartCount = 137, "OOMKilled", 2
		c.Labels = map[string]string{"a": "b"}
		return nil
	})
	if err != nil || c.ExitStatus != 137 || c.ExitReason != "OOMKilled" || c.RestartCount != 2 || c.Labels["a"] != "b" {
		t.Fatalf("update: %+v, %v", c, err)
	}
	_, err = db.UpdateContainer(ctx, "abc123", func(c *Container) error { c.Name = "other"; return nil })
	wantKind(t, "rename", err, errdefs.ErrInvalidArgument)
	list, err := db.ListContainers(ctx, "labels.a==b")
	if err != nil || len(list) != 1 {
		t.Fatalf("list by label: %v, %v", list, err)
	}
}

func TestNamespaceWithContainersCannotBeDeleted(t *testing.T) {
	db := newDB(t, Options{})
	ctx := nsCtx("ns1")
	if _, err := db.CreateContainer(ctx, testContainer("abc123", "")); err != nil {
		t.Fatal(err)
	}
	wantKind(t, "delete namespace", db.DeleteNamespace(ctx, "ns1"), errdefs.ErrFailedPrecondition)
}
