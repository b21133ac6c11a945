"""Outbound calls: the outbox's messages delivered to remote Hessian services.

``client`` is a Twisted Hessian client (what Caucho's ``HessianProxyFactory`` sends by
default); ``messages`` turns an outbox payload into the Java DTO of the call;
``delivery`` is the ``Deliverer`` service that leases, calls and settles messages.
"""
