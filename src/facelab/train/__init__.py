"""All of facelab's training, in one place.

* ``identities``: identity classifiers on embeddings (k-fold CV, grid search, open-set threshold); ``dataset``: labelled folders, embeddings;
* ``attributes`` (+ ``attribute_nets``, ``ensemble``): multi-task attribute networks, your own label sets, ONNX export, ensembles;
* ``landmarks``: the landmark CNN on 68 points or any point set; ``blazeface``: the detector's fine-tuning;
* ``balance``: class counts, class weights, augmenting small classes more; ``curves``: loss / accuracy PNGs of any training history;
* ``predict``: a job for any trained model file.

Their measurements live in :mod:`facelab.evaluate`.
"""
