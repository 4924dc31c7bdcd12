"""Side roads of the course: training beyond one model in one process.

* :mod:`~rankcourse.scale.replicas` -- many small multi-task models trained at once as stacked
  copies (chapter 5's experiment over seeds and task correlations);
* :mod:`~rankcourse.scale.distributed` -- data-parallel ``fit`` with ``torch.distributed`` (the
  appendix); :mod:`~rankcourse.scale.ddp_job` -- the job ``torchrun`` starts;
* :mod:`~rankcourse.scale.sharded_tables` -- embedding tables sharded with TorchRec (optional).

All of them train with the one engine of :mod:`rankcourse.engine`, as ``fit`` does. Nothing is
imported here, so ``import rankcourse`` never loads ``torch.distributed``. The old paths
(``rankcourse.replicas``, ``rankcourse.distributed``, ``rankcourse.ddp_job``,
``rankcourse.sharded_tables``) still work.
"""
