"""Style galleries: the on-disk store and manifest (`store`), the incremental locked build (`build`), the FAISS
index (`faiss_index`) and stage 2 over a gallery, retrieval + exact ranking (`retrieval`).
Imports matching (descriptors, scores, assignment), data and errors; only methods and entry points import it."""
