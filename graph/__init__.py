"""Graph clustering of posts with missing modalities (seed 002).

Not built yet: tracked in the graph-clustering issue. Predictions carry `cluster: null` until it lands.
"""
