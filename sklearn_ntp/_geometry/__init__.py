"""The implicit-bias geometry.

Subspaces, the NTP-SVM and its certificates, separable pairs and the limit.
"""
