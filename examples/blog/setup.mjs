// A small blog on Basalt, through the official JS SDK: public posts that only their author may
// edit, comments by signed-in users, and a query with a filter, sort and expand.
// `setup(pb, suffix)` takes a superuser-authenticated client; the test suite runs it
// (tests/sdk/examples.test.mjs) so this example cannot rot.

export async function setup(pb, suffix = '') {
  const posts = `posts${suffix}`;
  const comments = `comments${suffix}`;
  const users = await pb.collections.getOne('users');
  await pb.collections.create({
    name: posts,
    listRule: '',
    viewRule: '',
    createRule: "@request.auth.id != '' && @request.body.author = @request.auth.id",
    updateRule: 'author = @request.auth.id',
    deleteRule: 'author = @request.auth.id',
    fields: [
      { name: 'title', type: 'text', required: true, max: 200 },
      { name: 'body', type: 'editor' },
      { name: 'author', type: 'relation', collectionId: users.id, maxSelect: 1, required: true },
      { name: 'published', type: 'bool' },
      { name: 'created', type: 'autodate', onCreate: true },
    ],
    indexes: [`CREATE INDEX idx_${posts}_created ON ${posts} (created)`],
  });
  const postsColl = await pb.collections.getOne(posts);
  await pb.collections.create({
    name: comments,
    listRule: '',
    viewRule: '',
    createRule: "@request.auth.id != ''",
    fields: [
      { name: 'post', type: 'relation', collectionId: postsColl.id, maxSelect: 1, cascadeDelete: true },
      { name: 'text', type: 'text', required: true },
    ],
  });

  const author = await pb.collection('users').create({
    email: `author${suffix}@example.com`, password: 'author-password', passwordConfirm: 'author-password',
    name: 'Ada',
  });
  const first = await pb.collection(posts).create({ title: 'Hello Basalt', body: '<p>First!</p>', author: author.id, published: true });
  await pb.collection(posts).create({ title: 'Draft', author: author.id, published: false });
  await pb.collection(comments).create({ post: first.id, text: 'Nice post' });

  // What a reader's page would load: published posts, newest first, with author and comments.
  return pb.collection(posts).getList(1, 10, {
    filter: pb.filter('published = {:p}', { p: true }),
    sort: '-created',
    expand: `author,${comments}_via_post`,
  });
}
