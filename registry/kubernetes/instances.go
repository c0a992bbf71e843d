package kubernetes

import (
	"net"
	"strconv"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// Reasons for ignoring input, the values of AttrReason.
const (
	// ReasonNoTargetRef: an endpoint without a targetRef, or whose target
	// is not a Pod. Its lane cannot be known, so it is not an instance.
	ReasonNoTargetRef = "no_target_ref"
	// ReasonPodNotFound: the Pod an endpoint points at is not (or not yet)
	// in the cache. It becomes an instance when the Pod arrives.
	ReasonPodNotFound = "pod_not_found"
	// ReasonInvalidLane: the Pod's lane label holds no valid tag (an empty
	// value included). The Pod is not an instance: it is never put in a
	// lane it may not belong to.
	ReasonInvalidLane = "invalid_lane"
	// ReasonLaneConflict: the Pod matches the selectors of two lanes. It
	// is not an instance; the selectors need fixing.
	ReasonLaneConflict = "lane_conflict"
	// ReasonInvalidWeight: the weight annotation is not an integer from 1
	// to registry.MaxWeight. The Pod is an instance of weight 1.
	ReasonInvalidWeight = "invalid_weight"
	// ReasonPortNotFound: an EndpointSlice without the port WithPortName
	// names. None of its endpoints is an instance.
	ReasonPortNotFound = "port_not_found"
	// ReasonAmbiguousPort: an EndpointSlice with several ports, and no
	// WithPortName to choose one.
	ReasonAmbiguousPort = "ambiguous_port"
	// ReasonAddressType: an EndpointSlice of FQDN addresses; only IPv4 and
	// IPv6 slices are read.
	ReasonAddressType = "address_type"
	// ReasonNoAddress: an endpoint without an address.
	ReasonNoAddress = "no_address"
	// ReasonInvalidEndpoint: an endpoint whose address and port make no
	// valid instance (registry.Instance.Validate), which the API server's
	// own validation should have refused.
	ReasonInvalidEndpoint = "invalid_endpoint"
)

// instances computes the instance set of s from the caches. ignored maps a
// key of each piece of input left out (or read in part) to its reason.
func (r *Registry) instances(s *service) (insts []registry.Instance, ignored map[string]string) {
	ignore := func(key, reason string) {
		if ignored == nil {
			ignored = map[string]string{}
		}
		ignored[key] = reason
	}
	objs, _ := s.nsc.slices.GetIndexer().ByIndex(byService, s.key.name)
	pods := s.nsc.pods.GetIndexer()
	byAddr := map[string]int{}
	for _, o := range objs {
		sl, ok := o.(*discoveryv1.EndpointSlice)
		if !ok {
			continue
		}
		if sl.AddressType != discoveryv1.AddressTypeIPv4 && sl.AddressType != discoveryv1.AddressTypeIPv6 {
			ignore("slice "+sl.Name, ReasonAddressType)
			continue
		}
		port, reason := r.port(sl)
		if reason != "" {
			ignore("slice "+sl.Name, reason)
			continue
		}
		for _, ep := range sl.Endpoints {
			if len(ep.Addresses) == 0 {
				ignore("slice "+sl.Name+" endpoint", ReasonNoAddress)
				continue
			}
			addr := net.JoinHostPort(ep.Addresses[0], port)
			t := ep.TargetRef
			if t == nil || t.Kind != "Pod" || t.Name == "" || t.Namespace != "" && t.Namespace != s.key.ns {
				ignore("endpoint "+addr, ReasonNoTargetRef)
				continue
			}
			obj, found, _ := pods.GetByKey(s.key.ns + "/" + t.Name)
			if !found {
				ignore("pod "+t.Name, ReasonPodNotFound)
				continue
			}
			pod := obj.(*metav1.PartialObjectMetadata)
			lane, reason := r.lane(s, pod)
			if reason != "" {
				ignore("pod "+t.Name, reason)
				continue
			}
			weight, ok := r.weight(pod)
			if !ok {
				ignore("pod "+t.Name, ReasonInvalidWeight)
			}
			in := registry.Instance{
				Service: s.display,
				Addr:    addr,
				Name:    t.Name,
				Tag:     lane,
				Weight:  weight,
				Health:  health(ep.Conditions),
			}
			if in.Validate() != nil {
				ignore("endpoint "+addr, ReasonInvalidEndpoint)
				continue
			}
			for _, k := range r.cfg.metaLabels {
				if v, ok := pod.Labels[k]; ok {
					if in.Metadata == nil {
						in.Metadata = map[string]string{}
					}
					in.Metadata[k] = v
				}
			}
			// The endpointslice controller may list an endpoint in two
			// slices for a moment while it moves it: keep one, serving if
			// either is.
			if i, dup := byAddr[addr]; dup {
				if insts[i].Health != registry.Serving {
					insts[i] = in
				}
				continue
			}
			byAddr[addr] = len(insts)
			insts = append(insts, in)
		}
	}
	return insts, ignored
}

// port returns the port of a slice to use, or the reason to ignore it.
func (r *Registry) port(sl *discoveryv1.EndpointSlice) (string, string) {
	if !r.cfg.portSet {
		if len(sl.Ports) != 1 || sl.Ports[0].Port == nil {
			if len(sl.Ports) == 0 || sl.Ports[0].Port == nil {
				return "", ReasonPortNotFound
			}
			return "", ReasonAmbiguousPort
		}
		return strconv.Itoa(int(*sl.Ports[0].Port)), ""
	}
	for _, p := range sl.Ports {
		if p.Name != nil && *p.Name == r.cfg.port && p.Port != nil {
			return strconv.Itoa(int(*p.Port)), ""
		}
	}
	return "", ReasonPortNotFound
}

// lane returns a Pod's lane, or the reason to ignore the Pod.
func (r *Registry) lane(s *service, pod *metav1.PartialObjectMetadata) (tag.Tag, string) {
	if s.lanes == nil {
		v, ok := pod.Labels[r.cfg.laneLabel]
		if !ok {
			return tag.Tag{}, ""
		}
		t, err := tag.Parse(v)
		if err != nil {
			return tag.Tag{}, ReasonInvalidLane
		}
		return t, ""
	}
	set := labels.Set(pod.Labels)
	var lane tag.Tag
	matched := false
	for _, l := range s.lanes {
		if !l.sel.Matches(set) {
			continue
		}
		if matched {
			return tag.Tag{}, ReasonLaneConflict
		}
		lane, matched = l.lane, true
	}
	return lane, ""
}

// weight returns a Pod's weight (0 for the default, 1), and false when
// its annotation is invalid.
func (r *Registry) weight(pod *metav1.PartialObjectMetadata) (uint32, bool) {
	v, ok := pod.Annotations[r.cfg.weightAnn]
	if !ok {
		return 0, true
	}
	w, err := strconv.ParseUint(v, 10, 32)
	if err != nil || w < 1 || w > registry.MaxWeight {
		return 0, false
	}
	return uint32(w), true
}

// health reads an endpoint's conditions. An endpoint is Serving when it is
// ready (nil means ready, as the API documents) and not terminating. A
// terminating endpoint is NotServing even while its Pod still passes its
// readiness probe (serving=true): it gets no new calls, while the calls
// already on its connections finish; a lane whose endpoints all terminate
// is unavailable, and its calls fall back as configured.
func health(c discoveryv1.EndpointConditions) registry.Health {
	ready := c.Ready == nil || *c.Ready
	terminating := c.Terminating != nil && *c.Terminating
	if ready && !terminating {
		return registry.Serving
	}
	return registry.NotServing
}
