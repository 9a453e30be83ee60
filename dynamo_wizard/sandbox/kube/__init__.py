"""The sandbox's Kubernetes API server: an in-memory object store served over HTTP on 127.0.0.1.

Project-owned (offline-test-stack §2.4 item 6) rather than kmock: the product needs server-side apply
(PATCH that creates), PUT, JSON/merge/strategic patches, label and field selectors, resourceVersion-based
watches, pod logs fed by the controller simulation, the service proxy, and list bodies with `kind` so that
plain kubectl works too — kmock 0.8 has none of these.
"""
