// Package kube owns the Kubernetes side of meshgate: the source that turns
// the objects of a cluster (the App Mesh kinds, Namespaces, Services and
// EndpointSlices, watched through controller-runtime informers) into the same
// resource.Set that the file source produces, and the status writer that puts
// compile's verdict on each App Mesh object.
//
// Each App Mesh object is decoded by resource.(*Set).AddFile from its JSON,
// exactly as a manifest file would be, so a cluster and a directory of YAML
// mean the same thing: the guide's forms, the scalar-to-string leniency and
// every problem message are shared.
//
// Membership (appmesh-behaviour.md §1.8) is not written into the objects: App
// Mesh's mutating webhook stored spec.meshRef and spec.virtualGatewayRef at
// create time, while here compile designates the mesh and the gateway from
// the selectors every time it runs. An object that names its mesh or gateway
// (meshRef, virtualGatewayRef, or the guide's mesh and virtualGateway) keeps
// that choice; the API server only stops such a reference from changing.
package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/internal/resource"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// Kinds are the App Mesh kinds the source watches, in the order they are
// listed. Route is meshgate's CRD for the guide's standalone route; a cluster
// that kept App Mesh's own CRDs has no Route kind, and the source then
// watches the other six.
var Kinds = []string{
	v1beta2.KindMesh, v1beta2.KindVirtualGateway, v1beta2.KindGatewayRoute, v1beta2.KindVirtualService,
	v1beta2.KindVirtualRouter, v1beta2.KindVirtualNode, v1beta2.KindRoute,
}

// Options configures a Source.
type Options struct {
	// ClusterDomain is the DNS suffix of Service names; "cluster.local"
	// when empty.
	ClusterDomain string
	// HoldOff is how long a change waits for more before a snapshot is
	// built (100ms when zero); MaxDelay caps the wait under a steady stream
	// of changes (1s when zero).
	HoldOff, MaxDelay time.Duration
	Logger            *slog.Logger
}

// Snapshot is one view of the cluster.
type Snapshot struct {
	// Set is the input of compile.
	Set *resource.Set
	// Objects holds every App Mesh object as the API server stored it, by
	// key, including those that did not decode (their problems are in
	// Set.Problems).
	Objects map[resource.Key]*unstructured.Unstructured
}

// Source builds Snapshots from an informer cache.
type Source struct {
	cache cache.Cache
	opts  Options
	log   *slog.Logger
	kick  chan struct{}

	// Only the Run goroutine touches these.
	kinds   []string
	decoded map[types.UID]decodedObject
	last    *fingerprint
}

type decodedObject struct {
	resourceVersion string
	set             *resource.Set
}

// Scheme is the scheme of the typed objects the source reads.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := v1beta2.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// CacheOptions are the informer cache options the source expects: managed
// fields, which nothing here reads, are dropped to save memory.
func CacheOptions() cache.Options {
	return cache.Options{Scheme: Scheme(), DefaultTransform: cache.TransformStripManagedFields()}
}

// NewCache returns an informer cache for cfg with CacheOptions. The caller
// starts it.
func NewCache(cfg *rest.Config) (cache.Cache, error) {
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	opts := CacheOptions()
	opts.HTTPClient = httpClient
	opts.Mapper = mapper
	return cache.New(cfg, opts)
}

// New returns a Source reading from c, which must have been built with
// CacheOptions (or be a manager's cache with the same scheme).
func New(c cache.Cache, opts Options) *Source {
	if opts.ClusterDomain == "" {
		opts.ClusterDomain = "cluster.local"
	}
	if opts.HoldOff <= 0 {
		opts.HoldOff = 100 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Source{cache: c, opts: opts, log: log, kick: make(chan struct{}, 1), decoded: map[types.UID]decodedObject{}}
}

// Watch runs a Source on its own cache for cfg until ctx is done, calling
// onSnapshot as Run does.
func Watch(ctx context.Context, cfg *rest.Config, opts Options, onSnapshot func(*Snapshot)) error {
	c, err := NewCache(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	src := New(c, opts)
	go func() { errc <- src.Run(ctx, onSnapshot) }()
	if err := c.Start(ctx); err != nil {
		cancel()
		<-errc
		return err
	}
	return <-errc
}

// Run registers the informers, waits for them to sync and then calls
// onSnapshot with a new Snapshot after every change that alters the input
// of compile (coalesced by HoldOff and MaxDelay), starting with the first
// complete view. It returns when ctx is done. The cache must be started,
// before or after Run is called.
func (s *Source) Run(ctx context.Context, onSnapshot func(*Snapshot)) error {
	if err := s.register(ctx); err != nil {
		return err
	}
	if !s.cache.WaitForCacheSync(ctx) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("kubernetes: informers did not sync")
	}
	s.notify()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
		}
		s.settle(ctx)
		if ctx.Err() != nil {
			return nil
		}
		snap, err := s.build(ctx)
		if err != nil {
			s.log.Error("kubernetes: reading the cache failed; retrying", "err", err)
			s.retryLater(ctx)
			continue
		}
		fp := fingerprintOf(snap)
		if s.last != nil && reflect.DeepEqual(*s.last, fp) {
			continue
		}
		s.last = &fp
		onSnapshot(snap)
	}
}

func (s *Source) register(ctx context.Context) error {
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.notify() },
		UpdateFunc: func(any, any) { s.notify() },
		DeleteFunc: func(any) { s.notify() },
	}
	add := func(obj client.Object) error {
		inf, err := s.cache.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
		if err != nil {
			return err
		}
		_, err = inf.AddEventHandler(handler)
		return err
	}
	s.kinds = nil
	for _, kind := range Kinds {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(v1beta2.SchemeGroupVersion.WithKind(kind))
		err := add(u)
		if meta.IsNoMatchError(err) {
			s.log.Warn("kubernetes: kind not served by the API server; objects of this kind are not read", "kind", kind, "group", v1beta2.SchemeGroupVersion.String())
			continue
		}
		if err != nil {
			return fmt.Errorf("kubernetes: watching %s: %w", kind, err)
		}
		s.kinds = append(s.kinds, kind)
	}
	for _, obj := range []client.Object{&corev1.Namespace{}, &corev1.Service{}, &discoveryv1.EndpointSlice{}} {
		if err := add(obj); err != nil {
			return fmt.Errorf("kubernetes: watching %T: %w", obj, err)
		}
	}
	return nil
}

func (s *Source) notify() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// settle waits until changes stop arriving for HoldOff, or MaxDelay passed.
func (s *Source) settle(ctx context.Context) {
	deadline := time.NewTimer(s.opts.MaxDelay)
	defer deadline.Stop()
	for {
		quiet := time.NewTimer(s.opts.HoldOff)
		select {
		case <-ctx.Done():
			quiet.Stop()
			return
		case <-deadline.C:
			quiet.Stop()
			return
		case <-quiet.C:
			return
		case <-s.kick:
			quiet.Stop()
		}
	}
}

func (s *Source) retryLater(ctx context.Context) {
	go func() {
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
			s.notify()
		}
	}()
}

// build lists everything from the cache into a Snapshot.
func (s *Source) build(ctx context.Context) (*Snapshot, error) {
	set := resource.NewSet()
	snap := &Snapshot{Set: set, Objects: map[resource.Key]*unstructured.Unstructured{}}
	live := map[types.UID]bool{}
	for _, kind := range s.kinds {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(v1beta2.SchemeGroupVersion.WithKind(kind + "List"))
		if err := s.cache.List(ctx, list); err != nil {
			return nil, fmt.Errorf("listing %s: %w", kind, err)
		}
		for i := range list.Items {
			u := &list.Items[i]
			live[u.GetUID()] = true
			key := resource.Key{Kind: kind, Namespace: u.GetNamespace(), Name: u.GetName()}
			snap.Objects[key] = u
			d := s.decode(u)
			for k, o := range d.set.Objects {
				set.Objects[k] = o
			}
			set.Problems = append(set.Problems, d.set.Problems...)
		}
	}
	for uid := range s.decoded {
		if !live[uid] {
			delete(s.decoded, uid)
		}
	}

	var nss corev1.NamespaceList
	if err := s.cache.List(ctx, &nss); err != nil {
		return nil, fmt.Errorf("listing Namespaces: %w", err)
	}
	for _, ns := range nss.Items {
		set.Namespaces[ns.Name] = resource.Namespace{Name: ns.Name, Labels: ns.Labels}
	}
	var svcs corev1.ServiceList
	if err := s.cache.List(ctx, &svcs); err != nil {
		return nil, fmt.Errorf("listing Services: %w", err)
	}
	var slices discoveryv1.EndpointSliceList
	if err := s.cache.List(ctx, &slices); err != nil {
		return nil, fmt.Errorf("listing EndpointSlices: %w", err)
	}
	set.Endpoints = discover(set, svcs.Items, slices.Items, s.opts.ClusterDomain)
	return snap, nil
}

// decode turns one stored object into Set entries with the manifest decoder,
// reusing the previous result while the object's resourceVersion is the same.
func (s *Source) decode(u *unstructured.Unstructured) decodedObject {
	if d, ok := s.decoded[u.GetUID()]; ok && d.resourceVersion == u.GetResourceVersion() {
		return d
	}
	obj := make(map[string]any, len(u.Object))
	for k, v := range u.Object {
		obj[k] = v
	}
	set := resource.NewSet()
	data, err := json.Marshal(obj)
	if err != nil {
		// Unstructured content came from JSON; this is not expected.
		set.Problems = append(set.Problems, resource.Problem{
			Key:     resource.Key{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()},
			Message: "cannot encode the stored object: " + err.Error(),
		})
	} else {
		set.AddFile("", data)
	}
	d := decodedObject{resourceVersion: u.GetResourceVersion(), set: set}
	s.decoded[u.GetUID()] = d
	return d
}

// fingerprint is what a Snapshot's consumers depend on; equal fingerprints
// mean an unchanged input, so a change elsewhere in the cluster (an unrelated
// EndpointSlice) causes no recompile.
type fingerprint struct {
	Objects    map[resource.Key]string
	Namespaces map[string]map[string]string
	Endpoints  map[string][]string
}

func fingerprintOf(s *Snapshot) fingerprint {
	fp := fingerprint{Objects: map[resource.Key]string{}, Namespaces: map[string]map[string]string{}, Endpoints: s.Set.Endpoints}
	for k, u := range s.Objects {
		fp.Objects[k] = string(u.GetUID()) + "/" + u.GetResourceVersion()
	}
	for n, ns := range s.Set.Namespaces {
		fp.Namespaces[n] = ns.Labels
	}
	return fp
}
